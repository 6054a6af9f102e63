"""Ground a drafted diff in the tree it targets: re-anchor hunks, recount them, drop the rest.

A generated diff gets the *content* from the model but its bookkeeping is usually wrong: line
numbers are invented and skeleton hunks stop early, so the ``@@`` counts disagree with the body.
:func:`repair_patch` keeps the model's lines and fixes only the bookkeeping against the real
files: each hunk's old side (context and ``-`` lines) is searched in the file, exactly or up to
whitespace; a hunk found there gets its true start line and counts, the file's own text for
context lines that matched up to whitespace, and up to three lines of the file's own text as
context on each side; a hunk found nowhere is dropped, and so is a file left with no hunk. Nothing is invented: a hunk the model got wrong is removed, never rewritten.

Example::

    fixed, stats = repair_patch(draft, lambda path: (repo / path).read_text() if (repo / path).exists() else None)
    stats.kept, stats.dropped
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kforge.git.gitcmd import run_git

ReadFile = Callable[[str], str | None]
CONTEXT = 3


@dataclass
class RepairStats:
    files: int = 0
    hunks: int = 0
    kept: int = 0
    dropped: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class _Hunk:
    header: str
    body: list[str]


@dataclass
class _File:
    head: list[str]
    hunks: list[_Hunk]
    old_path: str | None = None
    new_path: str | None = None


def _path(line: str) -> str | None:
    p = line[4:].split("\t")[0].strip()
    if p == "/dev/null":
        return None
    return p[2:] if p.startswith(("a/", "b/")) else p


def _parse(patch: str) -> list[_File]:
    files: list[_File] = []
    cur: _File | None = None
    for ln in patch.splitlines():
        if ln.startswith("diff --git"):
            cur = _File([ln], [])
            files.append(cur)
        elif cur is None:
            continue
        elif ln.startswith("@@"):
            cur.hunks.append(_Hunk(ln, []))
        elif cur.hunks:
            if ln[:1] in (" ", "+", "-") or ln == "":
                cur.hunks[-1].body.append(ln if ln else " ")
            # anything else ("\ No newline", stray text) ends the hunk's usable body
        else:
            if ln.startswith("--- "):
                cur.old_path = _path(ln)
            elif ln.startswith("+++ "):
                cur.new_path = _path(ln)
            cur.head.append(ln)
    return files


def _find(lines: list[str], block: list[str], hint: int) -> tuple[int, bool] | None:
    """Index of ``block`` in ``lines`` (exact, else whitespace-insensitive), nearest to ``hint``."""
    n = len(block)
    for exact in (True, False):
        norm = (lambda s: s) if exact else (lambda s: " ".join(s.split()))
        want = [norm(b) for b in block]
        hits = [i for i in range(len(lines) - n + 1) if [norm(x) for x in lines[i:i + n]] == want]
        if hits:
            return min(hits, key=lambda i: abs(i - hint)), exact
    return None


def _hint(header: str) -> int:
    try:
        return max(int(header.split()[1].lstrip("-").split(",")[0]) - 1, 0)
    except (IndexError, ValueError):
        return 0


def _pad_context(lines: list[str], start: int, n_old: int, body: list[str]) -> tuple[int, list[str]]:
    """Give the hunk ``CONTEXT`` lines of the file's own text on each side (git anchors a hunk that
    lacks trailing context at the end of the file, and one that lacks leading context at its top)."""
    lead = next((i for i, b in enumerate(body) if b[:1] in ("+", "-")), len(body))
    trail = next((i for i, b in enumerate(reversed(body)) if b[:1] in ("+", "-")), len(body))
    add_before = max(0, min(CONTEXT - lead, start))
    end = start + n_old
    add_after = max(0, min(CONTEXT - trail, len(lines) - end))
    before = [" " + ln for ln in lines[start - add_before:start]]
    after = [" " + ln for ln in lines[end:end + add_after]]
    return start - add_before, before + body + after


def repair_patch(patch: str, read_file: ReadFile) -> tuple[str, RepairStats]:
    """The draft with every hunk anchored in the real file (or dropped); see the module doc."""
    stats = RepairStats()
    out: list[str] = []
    for f in _parse(patch):
        stats.files += 1
        stats.hunks += len(f.hunks)
        if f.old_path is None:                        # a new file: only the counts can be wrong
            added = [ln for h in f.hunks for ln in h.body if ln.startswith("+")]
            if added and f.new_path:
                stats.kept += len(f.hunks)
                out += [*f.head, f"@@ -0,0 +1,{len(added)} @@", *added]
            else:
                stats.dropped += len(f.hunks)
            continue
        text = read_file(f.old_path)
        if text is None:
            stats.dropped += len(f.hunks)
            stats.reasons.append(f"{f.old_path}: not in the tree")
            continue
        lines = text.splitlines()
        kept: list[tuple[int, list[str]]] = []      # (old start index, body)
        for h in f.hunks:
            body = h.body
            while body and body[-1] == " ":          # trailing blank context the model padded with
                body = body[:-1]
            old = [ln[1:] for ln in body if ln[:1] in (" ", "-")]
            if not any(ln.startswith(("+", "-")) for ln in body):
                stats.dropped += 1
                stats.reasons.append(f"{f.old_path}: hunk changes nothing")
                continue
            if not old:                               # pure addition: needs a place, which the draft cannot prove
                stats.dropped += 1
                stats.reasons.append(f"{f.old_path}: addition without context")
                continue
            at = _find(lines, old, _hint(h.header))
            if at is None:
                stats.dropped += 1
                stats.reasons.append(f"{f.old_path}: old lines not found")
                continue
            start, exact = at
            if not exact:                             # use the file's own text for the matched lines
                real = iter(lines[start:start + len(old)])
                body = [(ln[0] + next(real)) if ln[:1] in (" ", "-") else ln for ln in body]
            start, body = _pad_context(lines, start, len(old), body)
            if any(start < s + sum(1 for b in kb if b[:1] in (" ", "-")) and s < start + len(old) for s, kb in kept):
                stats.dropped += 1
                stats.reasons.append(f"{f.old_path}: hunk overlaps an earlier one")
                continue
            kept.append((start, body))
        if not kept:
            continue
        kept.sort(key=lambda k: k[0])
        out += f.head
        delta = 0
        for start, body in kept:
            n_old = sum(1 for b in body if b[:1] in (" ", "-"))
            n_new = sum(1 for b in body if b[:1] in (" ", "+"))
            out.append(f"@@ -{start + 1},{n_old} +{start + 1 + delta},{n_new} @@")
            out += body
            delta += n_new - n_old
        stats.kept += len(kept)
    return ("\n".join(out) + "\n") if out else "", stats


def tree_reader(repo: Path, rev: str) -> ReadFile:
    """Read files as they are at ``rev`` in ``repo`` (``git show REV:PATH``); None when absent."""
    def read(path: str) -> str | None:
        r = run_git(repo, "show", f"{rev}:{path}")
        return r.stdout.decode(errors="replace") if r.returncode == 0 else None
    return read
