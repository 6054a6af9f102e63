"""A deterministic, clearly SYNTHETIC kernel-style git repository (the embedded default data).

``generate_demo_repo(path)`` writes a repository with a subsystem tree (drivers/net/..., fs/...,
mm/, kernel/sched/, ...), a MAINTAINERS file, 20 authors with home subsystems, C code edits,
kernel trailers (Signed-off-by, Reviewed-by, Acked-by, Reported-by incl. syzbot, Cc: stable,
Link:), ``Fixes: <sha12> ("subject")`` chains and reverts. Whether a commit is later fixed is
drawn from a latent risk that depends on what a model can observe at commit time (size, the
author's experience in the subsystem, review trailers, subsystem churn, and two interactions
between them) plus noise, so the
acceptance models have real signal to find. One commit carries invalid UTF-8 and one a binary
file, to exercise quarantine and binary handling. Same seed -> same shas.

With ``archive=DIR`` it also writes the patch e-mails behind the commits as a public-inbox archive
(:func:`kforge.mail.demo_archive.write_demo_archive`: series, versions, replies, some never merged),
the input of ``kforge ingest-list DIR --project PATH``.
"""

import math
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kforge.errors import InputError
from kforge.git.gitcmd import git, popen_git

SUBSYSTEMS = {
    "net/e1000": "drivers/net/ethernet/intel/e1000", "net/mlx5": "drivers/net/ethernet/mellanox/mlx5",
    "net/ipv4": "net/ipv4", "fs/ext4": "fs/ext4", "fs/btrfs": "fs/btrfs", "mm": "mm",
    "sched": "kernel/sched", "bpf": "kernel/bpf", "usb/core": "drivers/usb/core",
    "scsi/sd": "drivers/scsi/sd", "arch/x86": "arch/x86/kernel", "docs": "Documentation/core",
}
FIRST = ["Alice", "Bram", "Chen", "Dana", "Erik", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kiran", "Lena",
         "Marek", "Nadia", "Omar", "Petra", "Quentin", "Rosa", "Sven", "Tomoko"]
LAST = ["Archer", "Brandt", "Castillo", "Dvorak", "Eriksen", "Faure", "Gupta", "Horvat", "Ito", "Jansen",
        "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka"]
OBJECTS = ["buffer", "queue", "lock", "refcount", "descriptor", "timer", "irq handler", "dma mapping",
           "page cache", "inode", "skb", "work item", "error path", "probe", "reset path", "ring", "stats"]
FIX_VERBS = ["fix", "fix leak of", "fix race in", "fix use-after-free in", "fix NULL dereference in",
             "fix off-by-one in", "avoid double free of"]
FEAT_VERBS = ["add support for", "introduce", "implement", "allow configuring", "expose"]
CLEAN_VERBS = ["clean up", "simplify", "rename", "remove unused", "refactor"]
TYPES = ["int", "u32", "size_t", "bool", "long"]


@dataclass
class _Author:
    name: str
    email: str
    home: list[str]
    skill: float  # 0..1, lower = more bugs


def _c_line(rng: random.Random, depth: int = 1) -> str:
    v = rng.choice(["ret", "len", "idx", "flags", "count", "off", "val"])
    kind = rng.random()
    ind = "\t" * depth
    if kind < 0.3:
        return f"{ind}{v} = {rng.choice(['ctx->', 'dev->', 'priv->'])}{rng.choice(OBJECTS).replace(' ', '_')}_{v};"
    if kind < 0.5:
        return f"{ind}if ({v} < 0)\n{ind}\treturn {v};"
    if kind < 0.65:
        return f"{ind}{rng.choice(['spin_lock', 'mutex_lock', 'rcu_read_lock'])}(&{rng.choice(['ctx', 'dev', 'priv'])}->lock);"
    if kind < 0.8:
        return f"{ind}{rng.choice(TYPES)} {v}_{rng.randint(0, 9)} = {rng.randint(0, 4096)};"
    return f"{ind}{rng.choice(['kfree', 'put_device', 'dma_unmap_single', 'kref_put'])}({v});"


def _function(rng: random.Random, name: str) -> list[str]:
    body = [_c_line(rng) for _ in range(rng.randint(3, 8))]
    return [f"static int {name}(struct {name.split('_')[0]}_ctx *ctx)", "{", *body, "\treturn 0;", "}", ""]


def _git(path: Path, *args: str) -> str:
    return git(path, *args).decode()


def generate_demo_repo(path: str | Path, n_commits: int = 1200, seed: int = 7,
                       archive: str | Path | None = None) -> dict[str, object]:
    """Create the demo repository at ``path`` (must not exist or be empty), and with ``archive`` its
    list archive (a new directory). Returns a summary."""
    root = Path(path)
    if root.exists() and any(root.iterdir()):
        raise InputError(f"{root} exists and is not empty; the demo repository needs a new directory")
    if n_commits < 50:
        raise InputError("the demo repository needs at least 50 commits")
    root.mkdir(parents=True, exist_ok=True)
    git(None, "init", "-q", "-b", "master", str(root))
    rng = random.Random(seed)
    subs = list(SUBSYSTEMS)
    authors = [
        _Author(f"{first} {last}", f"{first.lower()}.{last.lower()}@example.org", rng.sample(subs, 2), rng.uniform(0.2, 1.0))
        for first, last in zip(FIRST, LAST, strict=True)
    ]
    maintainers = {s: rng.choice([a for a in authors if s in a.home] or authors) for s in subs}
    files: dict[str, list[str]] = {}
    for s, d in SUBSYSTEMS.items():
        for k in range(3):
            base = s.split("/")[-1].replace("-", "_")
            lines = ["// SPDX-License-Identifier: GPL-2.0", f"/* {s}: synthetic demo source */", ""]
            for j in range(4):
                lines += _function(rng, f"{base}_fn{k}{j}")
            files[f"{d}/{base}_{k}.c"] = lines
    by_sub = {s: [p for p in files if p.startswith(SUBSYSTEMS[s] + "/")] for s in subs}

    proc = popen_git(root, "fast-import", "--quiet", "--done", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    out = proc.stdin

    def w(b: bytes | str) -> None:
        out.write(b.encode() if isinstance(b, str) else b)

    def blob_cmd(p: str, content: bytes) -> None:
        w(f"M 100644 inline {p}\ndata {len(content)}\n")
        w(content + b"\n")

    t0 = 1_546_300_800  # 2019-01-01
    ts = t0
    mark = 0
    commits: list[dict[str, object]] = []
    experience: dict[tuple[str, str], int] = {}
    churn: dict[str, int] = {s: 0 for s in subs}
    pending: list[tuple[int, int]] = []  # (due_ts, index of buggy commit)
    n_fixes = n_reverts = 0

    def emit(author: _Author, subject: str, body: str, changes: list[tuple[str, bytes]], when: int) -> str:
        nonlocal mark
        mark += 1
        msg = (subject + "\n\n" + body).encode()
        if mark == 37:  # one commit with a Latin-1 byte: invalid UTF-8 on purpose
            msg = msg.replace(b"\n\n", " (caf\xe9)\n\n".encode("latin-1"), 1)
        committer = maintainers[subs[mark % len(subs)]]
        w(f"commit refs/heads/master\nmark :{mark}\n")
        w(f"author {author.name} <{author.email}> {when} +0000\n")
        w(f"committer {committer.name} <{committer.email}> {when + 3600} +0000\n")
        w(f"data {len(msg)}\n")
        w(msg + b"\n")
        if mark > 1:
            w(f"from :{mark - 1}\n")
        for p, content in changes:
            blob_cmd(p, content)
        w(f"get-mark :{mark}\n")
        out.flush()
        return proc.stdout.readline().decode().strip()  # type: ignore[union-attr]

    def text(p: str) -> bytes:
        return ("\n".join(files[p]) + "\n").encode()

    # initial import
    maint_lines = ["List of maintainers (synthetic)", ""]
    for s in subs:
        m = maintainers[s]
        maint_lines += [s.upper(), f"M:\t{m.name} <{m.email}>", f"F:\t{SUBSYSTEMS[s]}/", ""]
    init_changes = [(p, text(p)) for p in files] + [("MAINTAINERS", ("\n".join(maint_lines) + "\n").encode()),
                                                    ("README", b"Synthetic kernel-style demo repository (kforge).\n")]
    emit(authors[0], "Initial import of the synthetic tree", f"Signed-off-by: {authors[0].name} <{authors[0].email}>",
         init_changes, ts)

    while len(commits) < n_commits - 1:
        ts += rng.randint(3600, 150000)  # ~21 h apart: 1,200 commits span ~3 years
        due = [i for i, (d, _) in enumerate(pending) if d <= ts]
        author = rng.choice(authors)
        reported = None
        if due:
            _, bug_idx = pending.pop(due[0])
            bug = commits[bug_idx]
            s = str(bug["subsystem"])
            path = str(bug["file"])
            is_revert = rng.random() < 0.12
            kind = "revert" if is_revert else "fix"
        else:
            s = rng.choice(author.home) if rng.random() < 0.75 else rng.choice(subs)
            path = rng.choice(by_sub[s])
            kind = rng.choices(["feature", "fix", "cleanup", "docs"], [0.4, 0.3, 0.2, 0.1])[0]
            bug = None
        lines = files[path]
        size = {"feature": rng.randint(8, 60), "fix": rng.randint(1, 12), "cleanup": rng.randint(3, 30),
                "docs": rng.randint(1, 6), "revert": 0}[kind]
        deleted = 0
        if kind == "revert" and bug is not None:
            deleted = min(int(bug["added"]), max(0, len(lines) - 10))
            if deleted:
                del lines[-deleted - 1:-1]
        else:
            fn = f"{s.split('/')[-1]}_{kind}_{len(commits)}"
            new = _function(rng, fn)[: max(3, size)] + ["}", ""] if size > 6 else [_c_line(rng) for _ in range(size)]
            if kind in ("fix", "cleanup") and len(lines) > 40:
                deleted = rng.randint(0, min(6, size))
                start = rng.randint(5, len(lines) - deleted - 2)
                del lines[start:start + deleted]
            insert_at = len(lines) - 1
            lines[insert_at:insert_at] = new
            size = len(new)
        changes = [(path, text(path))]
        if kind == "docs":
            changes.append((f"Documentation/{s.replace('/', '-')}.rst", f"{s}\n{'=' * len(s)}\n\nNotes {len(commits)}.\n".encode()))
        if len(commits) == 123:
            changes.append(("firmware/demo.bin", bytes(range(256)) * 4))
        obj = rng.choice(OBJECTS)
        verb = {"feature": rng.choice(FEAT_VERBS), "fix": rng.choice(FIX_VERBS), "cleanup": rng.choice(CLEAN_VERBS),
                "docs": "document", "revert": ""}[kind]
        if kind == "revert" and bug is not None:
            subject = f'Revert "{bug["subject"]}"'
        else:
            subject = f"{s}: {verb} {obj}"
        exp = experience.get((author.email, s), 0)
        reviewed = rng.random() < (0.55 if s in author.home else 0.35)
        body_lines = [f"The {obj} handling in {s} {'was wrong' if kind == 'fix' else 'needs this change'}."]
        if kind == "fix" and rng.random() < 0.5:
            body_lines.append(f"This leads to a crash when the {rng.choice(OBJECTS)} is torn down concurrently.")
        body_lines.append("")
        if kind == "revert" and bug is not None:
            body_lines = [f"This reverts commit {bug['sha']}.", "", f"It broke the {obj} path.", ""]
        trailers = []
        if bug is not None and kind == "fix":
            trailers.append(f'Fixes: {str(bug["sha"])[:12]} ("{bug["subject"]}")')
            if rng.random() < 0.25:
                reported = f"syzbot+{rng.randrange(1 << 24):06x}@syzkaller.appspotmail.com"
        if reported is None and rng.random() < 0.1:
            r = rng.choice(authors)
            reported = f"{r.name} <{r.email}>"
        if reported:
            trailers.append(f"Reported-by: {reported}")
        if kind == "fix" and rng.random() < 0.4:
            trailers.append("Cc: stable@vger.kernel.org")
        trailers.append(f"Signed-off-by: {author.name} <{author.email}>")
        if reviewed:
            r = rng.choice([a for a in authors if a is not author])
            trailers.append(f"Reviewed-by: {r.name} <{r.email}>")
        if rng.random() < 0.2:
            trailers.append(f"Acked-by: {maintainers[s].name} <{maintainers[s].email}>")
        trailers.append(f"Link: https://lore.example.org/r/{ts:x}@example.org")
        sha = emit(author, subject, "\n".join(body_lines + trailers), changes, ts)
        # latent risk from observable properties (+ noise): size, inexperience, no review, churn
        # (with interactions, as in real projects: big unreviewed changes and newcomers in hot areas)
        risk = (-3.3 + 0.02 * size + 1.1 * (exp < 3) + 0.9 * (not reviewed) + 0.6 * (1 - author.skill)
                + 0.04 * min(churn[s], 30) + (0.7 if kind == "feature" else 0.0)
                + 1.5 * (size > 30 and not reviewed) + 1.2 * (exp < 3 and churn[s] > 8) + rng.gauss(0, 0.3))
        buggy = kind != "docs" and rng.random() < 1 / (1 + math.exp(-risk))
        commits.append({"sha": sha, "subject": subject, "subsystem": s, "file": path, "added": size, "kind": kind})
        if kind == "fix":
            n_fixes += bug is not None
        n_reverts += kind == "revert"
        if buggy:
            pending.append((ts + int(rng.expovariate(1 / (86400 * 90))), len(commits) - 1))
        experience[(author.email, s)] = exp + 1
        churn[s] = churn[s] + 1 if kind == "fix" else max(0, churn[s] - 1)
    w("done\n")
    out.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed while writing the demo repository")
    _git(root, "reset", "-q", "--hard", "master")
    info: dict[str, object] = {"path": str(root), "commits": len(commits) + 1, "fixes": n_fixes, "reverts": n_reverts,
                               "head": _git(root, "rev-parse", "HEAD").strip(), "synthetic": True, "seed": seed}
    if archive is not None:
        from kforge.mail.demo_archive import write_demo_archive

        info["archive"] = write_demo_archive(root, archive, seed=seed)
    return info
