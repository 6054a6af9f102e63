"""Running git: repository checks and streaming output, with clear errors."""

import subprocess
from pathlib import Path

from kforge.errors import InputError, NotARepositoryError


def git(repo: Path, *args: str, check: bool = True, input_bytes: bytes | None = None) -> bytes:
    """Run ``git -C repo args`` and return stdout; raise InputError with git's message on failure."""
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, input=input_bytes, check=False
    )
    if check and proc.returncode != 0:
        raise InputError(f"git {' '.join(args[:3])} failed in {repo}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def check_repository(path: str | Path) -> Path:
    """Return the repository's top-level (or bare git dir); raise NotARepositoryError if it is not one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise NotARepositoryError(f"{p} does not exist")
    if not p.is_dir():
        raise NotARepositoryError(f"{p} is not a directory (expected a git repository)")
    proc = subprocess.run(["git", "-C", str(p), "rev-parse", "--git-dir"], capture_output=True, check=False)
    if proc.returncode != 0:
        raise NotARepositoryError(
            f"{p} is not a git repository ({proc.stderr.decode(errors='replace').strip() or 'git rev-parse failed'})"
        )
    return p.resolve()


def resolve_ref(repo: Path, ref: str) -> str | None:
    """The commit sha ``ref`` points to, or None when the repository has no commits yet."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True, check=False,
    )
    return proc.stdout.decode().strip() or None


def is_shallow(repo: Path) -> bool:
    return git(repo, "rev-parse", "--is-shallow-repository", check=False).strip() == b"true"


def rev_list(repo: Path, ref: str) -> list[str]:
    """All commits reachable from ``ref``, oldest first."""
    out = git(repo, "rev-list", "--reverse", "--topo-order", ref)
    return out.decode().split()
