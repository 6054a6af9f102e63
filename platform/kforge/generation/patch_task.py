"""The focused patch-drafting task: one hunk of one file, written against that file's pre-image.

The skeleton task (``prompts.patch_example``) asks the LM for a whole patch from the issue text
alone: it has never seen the lines it must change, so its hunks cannot apply. This task gives the
LM what it needs to write a real hunk, and keeps it small enough for CPU training:

* **input**: the request (subject and issue text), the path of the file to change, and a
  :data:`WINDOW`-line window of that file *as it is in the parent tree*, with the window's first
  line number. The window holds the lines the hunk changes; where in the window they sit is drawn
  per commit (seeded by the sha), so the position is not given away. The window is the part of the
  pre-image a developer points at ("change this function"), which is what makes the task small;
* **target**: the commit's real first hunk of that file, ``@@ -a,b +c,d @@`` and its body,
  verbatim (not a skeleton). The file headers come from the path (:func:`as_patch`);
* **rows**: commits whose first modified file's first hunk has at most :data:`MAX_HUNK_LINES`
  body lines and fits the window, and whose parent tree is readable.

Drafts are scored by ``git apply --check`` against the parent tree, as drafted and after
``patch_repair`` (:func:`score_drafts`), next to two measures that the apply check cannot fake:
whether the draft's old side (context and ``-`` lines) is the gold hunk's, and the F1 of its changed
(``+`` and ``-``) lines against the gold ones.

Example::

    items = task_items(test_rows, {"demo": repo_path})
    texts = draft(backbone, items)
    score_drafts(items, texts, {"demo": repo_path})   # -> {"patch_task_apply_share_repaired": ..., ...}

``run_generation`` mixes these examples into the LM's training (``patch_task_share`` of the training
rows whose parent tree is available; the skeleton task for the others) and reports
``test_patch_task_*`` on the held-out commits (:func:`evaluate`).
"""

import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from kforge.generation import prompts
from kforge.generation.patch_repair import ReadFile, repair_patch, tree_reader

WINDOW = 16          # pre-image lines shown
MAX_HUNK_LINES = 20  # body lines of the target hunk (the focused task)
MAX_TARGET = 180     # target tokens
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Hunk:
    path: str
    old_start: int          # 1-based, as in the header
    old_count: int
    text: str               # the header line and the body, verbatim


@dataclass(frozen=True)
class TaskItem:
    repo: str
    sha: str
    parent: str
    request: str
    hunk: Hunk
    window_start: int       # 1-based line number of the window's first line
    window: list[str]

    def old_side(self) -> list[str]:
        return _old_side(self.hunk.text)


def first_hunk(diff: str) -> Hunk | None:
    """The first hunk of the first file the diff modifies (not a new, deleted or binary file), its body
    read by the header's counts (a blank line inside it is blank context)."""
    lines, path, old_ok = diff.splitlines(), None, False
    for i, ln in enumerate(lines):
        if ln.startswith("diff --git"):
            path, old_ok = None, False
        elif ln.startswith("--- ") and path is None:
            old_ok = ln != "--- /dev/null"
        elif ln.startswith("+++ ") and old_ok and ln != "+++ /dev/null":
            path = ln[4:].split("\t")[0].strip().removeprefix("b/")
        elif ln.startswith("@@") and path:
            m = HUNK.match(ln)
            if not m:
                return None
            old_n, new_n = int(m.group(2) or 1), int(m.group(4) or 1)
            body: list[str] = []
            for b in lines[i + 1:]:
                if old_n <= 0 and new_n <= 0:
                    break
                b = b or " "
                if b[:1] == " ":
                    old_n, new_n = old_n - 1, new_n - 1
                elif b[:1] == "-":
                    old_n -= 1
                elif b[:1] == "+":
                    new_n -= 1
                else:
                    break
                body.append(b)
            if old_n > 0 or new_n > 0:
                return None                                # cut short (a truncated diff)
            return Hunk(path, int(m.group(1)), int(m.group(2) or 1), "\n".join([ln, *body]))
    return None


def _old_side(hunk_text: str) -> list[str]:
    return [ln[1:] for ln in hunk_text.splitlines()[1:] if ln[:1] in (" ", "-")]


def _changed(hunk_text: str) -> list[str]:
    """The ``+`` and ``-`` lines (sign kept, whitespace-normalised)."""
    return [ln[0] + " ".join(ln[1:].split()) for ln in hunk_text.splitlines()[1:] if ln[:1] in ("+", "-")]


def _window(lines: list[str], hunk: Hunk, sha: str, size: int, draw: int = 0) -> tuple[int, list[str]] | None:
    """``size`` lines of ``lines`` holding the hunk's old side, placed by a draw seeded with ``sha`` (and
    ``draw``, the how-manieth placement of this commit)."""
    first = hunk.old_start - 1 if hunk.old_count else hunk.old_start
    last = first + hunk.old_count                        # exclusive
    if hunk.old_count > size or last > len(lines):
        return None
    lo, hi = max(0, last - size), max(0, min(first, len(lines) - size))
    if lo > hi:
        lo = hi
    start = random.Random(int(hashlib.sha1(f"{sha}/{draw}".encode()).hexdigest()[:8], 16) if draw else
                          int(hashlib.sha1(sha.encode()).hexdigest()[:8], 16)).randint(lo, hi)
    return start + 1, lines[start:start + size]


def task_items(rows: pl.DataFrame, repo_paths: dict[str, Path], window: int = WINDOW,
               max_hunk_lines: int = MAX_HUNK_LINES,
               reader: Callable[[Path, str], ReadFile] = tree_reader, draws: int = 1) -> list[TaskItem]:
    """The rows that make a focused task (see the module doc), with their pre-image windows; ``draws`` > 1
    (training only) gives each row that many windows, placed differently, so that the LM learns to find
    the lines in the window rather than to remember where they were."""
    out = []
    for r in rows.iter_rows(named=True):
        path = repo_paths.get(r["repo"])
        if path is None or not r.get("parent"):
            continue
        h = first_hunk(r["diff"] or "")
        if h is None or len(h.text.splitlines()) - 1 > max_hunk_lines:
            continue
        text = reader(path, r["parent"])(h.path)
        if text is None:
            continue
        lines = text.splitlines()
        if _old_side(h.text) != lines[h.old_start - 1:h.old_start - 1 + len(_old_side(h.text))]:
            continue                                      # the diff does not match the parent tree
        request = (r["subject"] + "\n" + (r.get("issue") or "")[:160]).strip()
        seen = set()
        for d in range(draws):
            win = _window(lines, h, r["sha"], window, d)
            if win is not None and win[0] not in seen:
                seen.add(win[0])
                out.append(TaskItem(r["repo"], r["sha"], r["parent"], request, h, win[0], win[1]))
    return out


def prompt(codec: prompts.Codec, item: TaskItem, budget: int) -> list[int]:
    """``<issue> REQUEST <ctx> PATH @N\\nWINDOW <patch>``: the window is kept whole, the request cut."""
    tail = (codec.marker("<ctx>") + codec.encode(f" {item.hunk.path} @{item.window_start}\n" + "\n".join(item.window))
            + codec.marker("<patch>"))
    req = codec.encode(item.request)[: max(budget - len(tail) - 1, 8)]
    return prompts.fit_prompt(codec.marker("<issue>") + req + tail, budget)


def example(codec: prompts.Codec, item: TaskItem, max_len: int, max_target: int = MAX_TARGET) -> prompts.Example:
    target = codec.encode(item.hunk.text + "\n")[: min(max_target, max_len // 2)] + [codec.eos_id]
    p = prompt(codec, item, max_len - len(target))
    return prompts.Example(p + target, len(p))


def as_patch(path: str, hunk_text: str) -> str:
    """A drafted hunk as a one-file unified diff."""
    body = hunk_text.strip("\n")
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{body}\n" if body else ""


def draft(backbone: Any, items: list[TaskItem], max_new_tokens: int = MAX_TARGET, batch_size: int = 16) -> list[str]:
    """The LM's hunk per item (greedy; no n-gram ban: diffs repeat lines by nature)."""
    budget = backbone.max_len - min(max_new_tokens, backbone.max_len // 2)
    ids = [prompt(backbone, it, budget) for it in items]
    out: list[str] = []
    for i in range(0, len(ids), batch_size):
        out += [backbone.decode(t) for t, _ in backbone.generate(ids[i:i + batch_size], max_new_tokens, no_repeat_ngram=0)]
    return out


def _f1(got: list[str], want: list[str]) -> float:
    common = sum((Counter(got) & Counter(want)).values())
    return 2 * common / (len(got) + len(want)) if got or want else 0.0


def score_drafts(items: list[TaskItem], hunks: list[str], repo_paths: dict[str, Path],
                 apply_check: Callable[[Path, str, str], bool] | None = None) -> dict[str, float]:
    """Apply share as drafted and after repair (``git apply --check`` on the parent tree), the share
    whose old side is the gold hunk's, and the mean F1 of the changed lines."""
    if apply_check is None:
        from kforge.generation.evaluate import git_apply_check as apply_check
    n = len(items)
    drafted = repaired = old_exact = 0
    f1 = 0.0
    for it, h in zip(items, hunks, strict=True):
        repo = repo_paths[it.repo]
        patch = as_patch(it.hunk.path, h)
        drafted += apply_check(repo, it.parent, patch)
        fixed, _ = repair_patch(patch, tree_reader(repo, it.parent))
        repaired += apply_check(repo, it.parent, fixed)
        old_exact += _old_side(h if h.startswith("@@") else "@@\n" + h) == it.old_side()
        f1 += _f1(_changed(h if h.startswith("@@") else "@@\n" + h), _changed(it.hunk.text))
    return {"patch_task_rows": float(n),
            "patch_task_apply_share": drafted / n if n else 0.0,
            "patch_task_apply_share_repaired": repaired / n if n else 0.0,
            "patch_task_old_side_exact": old_exact / n if n else 0.0,
            "patch_task_changed_f1": f1 / n if n else 0.0}


def evaluate(backbone: Any, test: pl.DataFrame, repo_paths: dict[str, Path], rows: int = 16) -> dict[str, float]:
    """The LM's drafts for the first ``rows`` held-out commits that make the task, scored (0 rows when no
    parent tree is available)."""
    items = task_items(test, repo_paths)[:rows]
    return score_drafts(items, draft(backbone, items), repo_paths) if items else {"patch_task_rows": 0.0}
