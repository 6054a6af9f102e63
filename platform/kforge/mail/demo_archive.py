"""A SYNTHETIC public-inbox archive of the patch e-mails behind a (demo) repository's commits.

``write_demo_archive(repo, archive)`` reads the repository's history and writes a bare git
repository in public-inbox's layout (one commit per message, the raw message in blob ``m``), the
input of ``kforge ingest-list ARCHIVE --project REPO``. Same repository + seed -> same archive.

What is on the list: most commits were proposed as a *series* (one patch, or several of one
author's commits under a ``[PATCH vN 0/k]`` cover letter), often in several versions (v1
superseded by v2 ...), with replies: review (``Reviewed-by:``), questions, change requests,
``NAK``, "Applied, thanks". Not every proposal was merged. A merged series carries its commits'
exact diffs (``git patch-id`` finds them; its earlier versions match by title); an unmerged one
carries a reworked diff of the commits it was modelled on (same files, same size, same kind of
subject and message) under a title that neither a commit from shortly before it on nor any commit
of its sender has, so the matcher's title fallback cannot mistake it; those commits came in by
another route and have no e-mail. Apply-time trailers (``Reviewed-by``, ``Acked-by``, ``Link``)
are not in the e-mails: review tags appear only where the latent process put them.

Whether a series is merged is drawn from a latent score, the kind of signal real lists carry,
plus noise (logistic, so no rule decides it): the sender's standing with the maintainers (seen
only through their track record), earlier merges, the series' size (big series without review
fare badly), whether a reviewer engaged (it shows as ``Reviewed-by:`` tags carried into the next
version, not always), whether the subsystem maintainer is addressed, RFCs, how many versions it
went through, and how strict the subsystem is (with newcomers fare worse in strict ones).
:data:`LATENT` holds the weights; ``docs/notes/issue-17-email-demo.md`` says how they were chosen
(the e-mail model's held-out ROC AUC and its baselines' land near what the real LTP list gives).
"""

import math
import random
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, parseaddr
from pathlib import Path

from kforge.errors import InputError
from kforge.git.demo_repo import OBJECTS
from kforge.git.gitcmd import git, popen_git

LIST_ADDR = "demo-list@lists.example.org"
DAY = 86400
_APPLY_TIME_TRAILERS = re.compile(r"^(Reviewed-by|Acked-by|Tested-by|Link):", re.IGNORECASE)
_NUMBER = re.compile(r"\b\d+\b")
# The latent merge score (a logit) of a series: weights of its parts, and the noise's standard deviation.
LATENT = {"intercept": 0.9, "standing": 2.4, "record": 0.3, "size": -0.6, "engaged": 1.0, "acked": 0.8,
          "cc_maintainer": 0.6, "rfc": -1.8, "versions": 0.3, "strict": 1.6, "big_unreviewed": -1.5,
          "newcomer_in_strict": -1.5, "noise": 0.6}


@dataclass
class _Commit:
    sha: str
    name: str
    email: str
    at: int          # author time
    ct: int          # committer time (the merge)
    subject: str
    body: str        # message without the subject line and without apply-time trailers
    diff: str
    subsystem: str
    added: int


@dataclass
class _Series:
    commits: list[_Commit]
    versions: int
    rfc: bool
    cc_maintainer: bool
    engaged: bool
    maintainer_acked: bool
    merged: bool = False
    titles: list[str] = field(default_factory=list)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _maintainers(repo: Path) -> list[tuple[str, str, str]]:
    """(path prefix, subsystem, "Name <email>") from the MAINTAINERS file at HEAD (empty without one)."""
    text = git(repo, "show", "HEAD:MAINTAINERS", check=False).decode(errors="replace")
    out, name, who = [], "", ""
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" not in line[:3]:
            name, who = line.strip().lower(), ""
        elif line.startswith("M:"):
            who = line[2:].strip()
        elif line.startswith("F:") and name and who:
            out.append((line[2:].strip(), name, who))
    return sorted(out, key=lambda t: -len(t[0]))


def _commits(repo: Path, maintainers: list[tuple[str, str, str]]) -> list[_Commit]:
    """Non-merge, non-root, text-only, non-revert commits that add lines, oldest first."""
    raw = git(repo, "log", "--reverse", "--no-merges", "-p", "--format=%x01%H%x00%an%x00%ae%x00%at%x00%ct%x00%B%x02",
              "HEAD")
    out = []
    for chunk in raw.split(b"\x01")[2:]:  # [0] is empty, [1] the root commit
        head, _, diff_b = chunk.partition(b"\x02")
        sha, name, email, at, ct, msg = head.decode(errors="replace").split("\x00")
        diff = diff_b.decode(errors="replace").lstrip("\n")
        subject, _, rest = msg.strip().partition("\n")
        paths = re.findall(r"(?m)^diff --git a/(\S+)", diff)
        if (not paths or subject.startswith("Revert ") or "Binary files" in diff or "GIT binary patch" in diff
                or not re.search(r"(?m)^\+(?!\+\+)", diff)):
            continue
        sub = next((s for p in paths for prefix, s, _ in maintainers if p.startswith(prefix)), paths[0].split("/")[0])
        body = "\n".join(ln for ln in rest.strip("\n").splitlines() if not _APPLY_TIME_TRAILERS.match(ln)).strip()
        added = len(re.findall(r"(?m)^\+(?!\+\+)", diff))
        out.append(_Commit(sha, name, email.lower(), int(at), int(ct), subject.strip(), body, diff, sub, added))
    return out


def _rework(diff: str, rng: random.Random, round_: int) -> str:
    """The same change, reworked: one added line differs (another patch-id, same files and size)."""
    lines = diff.split("\n")
    added = [i for i, ln in enumerate(lines) if ln.startswith("+") and not ln.startswith("+++")]
    i = rng.choice(added)
    line = lines[i]
    if _NUMBER.search(line):
        lines[i] = _NUMBER.sub(lambda m: str(int(m.group()) + round_ + 1), line, count=1)
    else:
        lines[i] = line + f" /* rework {round_} */" if line.strip("+").strip() else f"+\t/* rework {round_} */"
    return "\n".join(lines)


def _encode(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _message(headers: list[tuple[str, str]], body: str) -> bytes:
    head = "".join(f"{k}: {_encode(v)}\n" for k, v in headers if v)
    return (head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n"
            + body.rstrip("\n") + "\n").encode()


class _Writer:
    """Collects messages; ``write`` stores them oldest first as public-inbox commits."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, int, str, str, bytes]] = []  # ts, seq, name, email, raw
        self.kinds: dict[str, int] = {}

    def add(self, kind: str, ts: int, sender: tuple[str, str], headers: list[tuple[str, str]], body: str) -> str:
        n = len(self.messages)
        mid = f"<{ts:x}.{n}.{sender[1].split('@')[0]}@example.org>"
        date = format_datetime(datetime.fromtimestamp(ts, UTC))
        full = [("From", f"{sender[0]} <{sender[1]}>"), *headers, ("Date", date), ("Message-Id", mid)]
        self.messages.append((ts, n, sender[0], sender[1], _message(full, body)))
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return mid

    def write(self, archive: Path) -> None:
        git(None, "init", "-q", "--bare", "-b", "master", str(archive))
        proc = popen_git(archive, "fast-import", "--quiet", "--done", stdin=-1, stdout=None, git_dir=True)
        assert proc.stdin is not None
        w = proc.stdin.write
        for k, (ts, _, name, email, raw) in enumerate(sorted(self.messages)):
            subject = re.search(rb"(?m)^Subject: (.*)$", raw)
            msg = (subject.group(1) if subject else b"message") + b"\n"
            w(f"commit refs/heads/master\nmark :{k + 1}\ncommitter {name} <{email}> {ts} +0000\n".encode())
            w(f"data {len(msg)}\n".encode() + msg)
            if k:
                w(f"from :{k}\n".encode())
            w(f"M 100644 inline m\ndata {len(raw)}\n".encode() + raw + b"\n")
        w(b"done\n")
        proc.stdin.close()
        if proc.wait() != 0:
            raise InputError(f"git fast-import failed while writing the archive {archive}")


def _who(c: _Commit) -> tuple[str, str]:
    return c.name, c.email


def _addr(who: str) -> tuple[str, str]:
    name, email = parseaddr(who)
    return name, email.lower()


def write_demo_archive(repo: str | Path, archive: str | Path, seed: int = 7, propose_share: float = 0.9
                       ) -> dict[str, object]:
    """Write the synthetic list archive of ``repo``'s patch e-mails to ``archive`` (a new directory,
    written under a temporary name and renamed when complete). Returns a summary."""
    repo, dest = Path(repo), Path(archive)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(f"{dest} exists and is not empty; the demo archive needs a new directory")
    maint = _maintainers(repo)
    commits = _commits(repo, maint)
    if len(commits) < 50:
        raise InputError(f"{repo}: {len(commits)} usable commits; the demo archive needs at least 50")
    rng = random.Random(f"kforge-demo-archive-{seed}")
    people = sorted({_who(c) for c in commits} | {_addr(who) for _, _, who in maint})
    standing = {e: rng.betavariate(2.0, 2.0) for _, e in people}          # the maintainers' trust: latent
    strict = {s: rng.gauss(0.0, 0.7) for s in sorted({c.subsystem for c in commits})}
    maint_of = {s: who for _, s, who in maint}
    series = _propose(commits, rng, propose_share)
    merged_before: dict[str, list[int]] = {}
    w = _Writer()
    for se in series:
        _decide(se, rng, standing, strict, merged_before)
        _emit(se, rng, w, commits, maint_of, people)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        w.write(tmp / "archive.git")
        if dest.exists():
            dest.rmdir()
        (tmp / "archive.git").rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    patches = sum(len(s.commits) * s.versions for s in series)
    return {"archive": str(dest), "messages": len(w.messages), "series": len(series),
            "merged_series": sum(s.merged for s in series), "patch_emails": patches,
            "by_kind": dict(sorted(w.kinds.items())), "synthetic": True, "seed": seed}


def _propose(commits: list[_Commit], rng: random.Random, share: float) -> list[_Series]:
    """Group commits into proposed series (one author, within 45 days) and draw their attributes."""
    used: set[int] = set()
    out = []
    for i, c in enumerate(commits):
        if i in used:
            continue
        used.add(i)
        group = [c]
        if rng.random() < 0.25:
            want = rng.randint(1, 4)
            for j in range(i + 1, len(commits)):
                d = commits[j]
                if d.at > c.at + 45 * DAY or len(group) > want:
                    break
                if j not in used and d.email == c.email:
                    used.add(j)
                    group.append(d)
        if rng.random() >= share:
            continue  # these commits came in another way (a pull request, another list)
        size = sum(g.added for g in group)
        cc = rng.random() < 0.7
        engaged = rng.random() < _sigmoid(-0.3 + 1.0 * cc - 0.02 * size)
        versions = 1 + (engaged and rng.random() < 0.5) + (rng.random() < 0.2) + (rng.random() < 0.05)
        out.append(_Series(group, versions, rfc=rng.random() < 0.08, cc_maintainer=cc, engaged=engaged,
                           maintainer_acked=cc and rng.random() < 0.3))
    return out


def _decide(se: _Series, rng: random.Random, standing: dict[str, float], strict: dict[str, float],
            merged_before: dict[str, list[int]]) -> None:
    """The latent merge score of a series and the draw (its sender's earlier merges count as of its date)."""
    first = se.commits[0]
    size = sum(c.added for c in se.commits)
    record = sum(1 for t in merged_before.get(first.email, []) if t < first.at)
    s = strict[first.subsystem]
    w = LATENT
    z = (w["intercept"] + w["standing"] * (standing[first.email] - 0.5) + w["record"] * math.log1p(record)
         + w["size"] * math.log1p(size) + w["engaged"] * se.engaged + w["acked"] * se.maintainer_acked
         + w["cc_maintainer"] * se.cc_maintainer + w["rfc"] * se.rfc + w["versions"] * (se.versions - 1)
         + w["strict"] * s + w["big_unreviewed"] * (size > 35 and not se.engaged)
         + w["newcomer_in_strict"] * (record < 2 and s > 0.3) + rng.gauss(0.0, w["noise"]))
    se.merged = rng.random() < _sigmoid(z)
    if se.merged:
        merged_before.setdefault(first.email, []).append(se.commits[-1].ct)


_QUESTIONS = ["Why is the lock needed here? The caller already holds it.",
              "Can this race with the teardown path?",
              "Please split this into a fix and a cleanup.",
              "This needs a better commit message: what is the user-visible problem?",
              "Does this build without CONFIG_DEBUG?",
              "Have you tested this on real hardware?"]


def _unmerged_text(c: _Commit, forbidden: set[str], rng: random.Random) -> tuple[str, str]:
    """Subject and message of an unmerged patch modelled on ``c``: the same kind of change to
    another object, under a subject that no commit it could be confused with has (the matcher
    falls back to titles); the message names the same object as the subject, as ``c``'s does."""
    prefix, _, rest = c.subject.partition(": ")
    obj = next((o for o in sorted(OBJECTS, key=len, reverse=True) if rest.endswith(" " + o)), "")
    verb = rest[:-len(obj) - 1] if obj else rest
    for _ in range(50):
        new = rng.choice(OBJECTS)
        cand = f"{prefix}: {verb} {new}"
        if cand.lower() not in forbidden:
            return cand, c.body.replace(f"The {obj} handling", f"The {new} handling", 1) if obj else c.body
    return f"{prefix}: rework {rest}", c.body


def _emit(se: _Series, rng: random.Random, w: _Writer, commits: list[_Commit], maint_of: dict[str, str],
          people: list[tuple[str, str]]) -> None:
    first = se.commits[0]
    sender = _who(first)
    k, v_last = len(se.commits), se.versions
    maint = maint_of.get(first.subsystem, "")
    others = [p for p in people if p[1] != first.email]
    reviewer = rng.choice(others)
    to = ", ".join(x for x in ((maint if se.cc_maintainer else ""), LIST_ADDR) if x)
    cc = ", ".join(f"{n} <{e}>" for n, e in rng.sample(others, rng.randint(0, 2)))
    texts = [(c.subject, c.body) for c in se.commits]
    if not se.merged:
        later = {c.subject.lower() for c in commits if c.ct >= first.at - 60 * DAY or c.email == first.email}
        texts = [_unmerged_text(c, later, rng) for c in se.commits]
    se.titles = [t for t, _ in texts]
    # the last version goes out 1-10 days before its first commit, earlier versions 4-14 days apart
    dates = [first.at - rng.randint(DAY, 10 * DAY)]
    for _ in range(v_last - 1):
        dates.insert(0, dates[0] - rng.randint(4 * DAY, 14 * DAY))
    maint_who = _addr(maint) if maint else reviewer
    for v in range(1, v_last + 1):
        ts = dates[v - 1]
        final = v == v_last
        tag = ("RFC PATCH" if se.rfc and v == 1 else "PATCH") + (f" v{v}" if v > 1 else "")
        cover_id = ""
        if k > 1:
            cover_subj = f"[{tag} 0/{k}] {first.subsystem}: {k} changes to the {rng.choice(OBJECTS)} handling"
            cover_id = w.add("cover", ts, sender, [("To", to), ("Cc", cc), ("Subject", cover_subj)],
                             "This series reworks " + ", ".join(se.titles) + ".\n\n" + "\n".join(
                                 f"  {t}" for t in se.titles) + "\n\n-- \n2.39.2\n")
        tags = []
        if v > 1 and se.engaged:
            tags.append(f"Reviewed-by: {reviewer[0]} <{reviewer[1]}>")
        if v > 1 and se.maintainer_acked:
            tags.append(f"Acked-by: {maint}")
        patch_ids = []
        for i, (c, (title, message)) in enumerate(zip(se.commits, texts, strict=True), start=1):
            diff = c.diff if se.merged and final else _rework(c.diff, rng, v)
            if not se.merged:
                diff = _rework(diff, rng, v + 10)
            note = f"Changes in v{v}:\n- address review comments\n\n" if v > 1 else ""
            body = "\n".join(x for x in (message, "\n".join(tags)) if x) + "\n---\n" + note + diff + "\n-- \n2.39.2\n"
            subj = f"[{tag} {i}/{k}] {title}" if k > 1 else f"[{tag}] {title}"
            refs = [("In-Reply-To", cover_id), ("References", cover_id)] if cover_id else []
            patch_ids.append((w.add("patch", ts + i, sender, [("To", to), ("Cc", cc), ("Subject", subj), *refs], body),
                              subj))
        target, subj = patch_ids[0] if k == 1 else (cover_id, cover_subj)
        _replies(se, rng, w, ts, final, target, subj, sender, reviewer, maint_who)


def _replies(se: _Series, rng: random.Random, w: _Writer, ts: int, final: bool, target: str, subj: str,
             sender: tuple[str, str], reviewer: tuple[str, str], maint: tuple[str, str]) -> None:
    def reply(kind: str, who: tuple[str, str], when: int, text: str) -> None:
        w.add(kind, when, who, [("To", f"{sender[0]} <{sender[1]}>"), ("Cc", LIST_ADDR), ("Subject", f"Re: {subj}"),
                                ("In-Reply-To", target), ("References", target)],
              f"On {format_datetime(datetime.fromtimestamp(ts, UTC))}, {sender[0]} wrote:\n> {subj}\n\n{text}\n")

    later = ts + rng.randint(3600, 3 * DAY)
    if not final:
        if se.engaged:
            reply("review", reviewer, later, rng.choice(_QUESTIONS) + "\n\nWith that fixed:\n\n"
                  f"Reviewed-by: {reviewer[0]} <{reviewer[1]}>")
        else:
            reply("question", rng.choice([reviewer, maint]), later, rng.choice(_QUESTIONS))
        if se.maintainer_acked:
            reply("ack", maint, later + 3600, f"Acked-by: {maint[0]} <{maint[1]}>")
        return
    if se.engaged and se.versions == 1:
        reply("review", reviewer, later, f"Looks good to me.\n\nReviewed-by: {reviewer[0]} <{reviewer[1]}>")
    if se.merged:
        if rng.random() < 0.6:
            reply("applied", maint, se.commits[-1].ct + 600, "Applied, thanks!")
    elif rng.random() < 0.35:
        reply("nak", maint, later + DAY, "NAK. " + rng.choice(["This papers over the real bug.",
                                                                "We do not want this in the core path.",
                                                                "This was discussed before and rejected."]))
    elif rng.random() < 0.5:
        reply("question", rng.choice([reviewer, maint]), later, rng.choice(_QUESTIONS))
