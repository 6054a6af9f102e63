"""Read patch e-mails from a public-inbox git archive (one message per commit, blob ``m``) or an mbox."""

from collections.abc import Iterator
from pathlib import Path

from kforge.errors import InputError
from kforge.git.gitcmd import run_git


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    out = run_git(repo, *args, input_bytes=stdin, git_dir=True)
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
