"""Read patch e-mails from a public-inbox git archive (one message per commit, blob ``m``) or an mbox."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from kforge.errors import InputError
from kforge.mail.parse import EMAIL_COLUMNS, parse_patch_email, split_mbox


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    out = subprocess.run(["git", f"--git-dir={repo}", *args], input=stdin, capture_output=True, check=False)
    if out.returncode != 0:
        raise InputError(f"git {' '.join(args[:2])} failed in {repo}: {out.stderr.decode(errors='replace')[:300]}")
    return out.stdout


def git_dir(path: Path) -> Path:
    """The git directory of a bare or non-bare repository."""
    if (path / ".git").is_dir():
        return path / ".git"
    if (path / "objects").is_dir() and (path / "HEAD").exists():
        return path
    raise InputError(f"{path} is not a git repository (public-inbox archives are git repositories)")


def public_inbox_messages(path: Path, since: str = "") -> Iterator[tuple[str, bytes]]:
    """(commit sha, raw message) for every commit that has an ``m`` blob, oldest first."""
    repo = git_dir(path)
    args = ["log", "--format=%H", "--reverse"] + ([f"--since={since}"] if since else []) + ["HEAD"]
    shas = _git(repo, *args).decode().split()
    if not shas:
        return
    batch = _git(repo, "cat-file", "--batch", stdin="".join(f"{s}:m\n" for s in shas).encode())
    pos = 0
    for sha in shas:
        nl = batch.index(b"\n", pos)
        header = batch[pos:nl].decode()
        pos = nl + 1
        if header.endswith("missing"):
            continue
        size = int(header.rsplit(" ", 1)[1])
        yield sha, batch[pos:pos + size]
        pos += size + 1


def read_patches(path: str | Path, since: str = "") -> pl.DataFrame:
    """Patch e-mails (non-patches dropped) from a public-inbox archive directory or an mbox/.patch file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such archive or mbox")
    rows = []
    if p.is_dir():
        for sha, raw in public_inbox_messages(p, since):
            row = parse_patch_email(raw, sha)
            if row is not None:
                rows.append(row)
    else:
        import hashlib

        for raw in split_mbox(p.read_bytes()):
            row = parse_patch_email(raw, hashlib.sha1(raw).hexdigest())
            if row is not None:
                rows.append(row)
    if not rows:
        raise InputError(f"{p}: no patch e-mails found (subjects need a [PATCH] or [RFC] tag)")
    df = pl.DataFrame(rows)
    return df.select(EMAIL_COLUMNS).filter(~pl.col("is_reply"))
