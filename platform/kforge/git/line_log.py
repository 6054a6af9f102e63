"""The zero-context change log of a repository's first-parent history, oldest first.

``git log -p -U0`` gives, per commit, only the line ranges it removed and added: what
:mod:`kforge.features.line_origins` needs to track which commit wrote each line (an incremental
``git blame`` over the whole history in one stream). Clones that lack some objects are handled:
git stops at the first commit it cannot diff, so the log is read in chunks and a failing chunk
is redone commit by commit; a commit git still cannot diff is marked (``FAILED_MARK``) so the
replay forgets the files it touched instead of drifting out of line.

Example::

    shas = first_parent_shas(Path("/src/dpdk"))
    log = change_log(Path("/src/dpdk"), shas)
"""

import subprocess
from pathlib import Path

from kforge.git.gitcmd import check_repository, git, popen_git, run_git

COMMIT_MARK = b"\x01"
FAILED_MARK = b"\x02FAILED"
_FORMAT = ("core.quotePath=false",)
_PATCH = ["-p", "-U0", "-M", "--no-color", "--diff-merges=first-parent", "--format=%x01%H"]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``git`` with names unquoted; the caller reads the exit status (a broken clone is expected)."""
    return run_git(repo, *args, config=_FORMAT)


def first_parent_shas(repo: Path, upto: str = "HEAD") -> list[str]:
    """The first-parent history ending at ``upto``, oldest first."""
    return git(check_repository(repo), "rev-list", "--first-parent", "--reverse", upto).decode().split()


def _touched_paths(repo: Path, sha: str) -> list[bytes] | None:
    proc = _git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha)
    return proc.stdout.split(b"\n") if proc.returncode == 0 else None


def change_log(repo: Path, shas: list[str], chunk: int = 500) -> bytes:
    """``git log -p -U0`` of ``shas`` (first-parent order, oldest first), as one byte stream.

    A commit git cannot diff appears as its mark followed by ``FAILED_MARK`` and the paths it
    touched (one per line; none when even those are unknown, which makes the replay forget all)."""
    out: list[bytes] = []
    for i in range(0, len(shas), chunk):
        part = shas[i:i + chunk]
        rng = part[-1] if i == 0 else f"{shas[i - 1]}..{part[-1]}"
        proc = _git(repo, "log", "--first-parent", "--reverse", *_PATCH, rng)
        if proc.returncode == 0:
            out.append(proc.stdout)
            continue
        for sha in part:
            one = _git(repo, "show", *_PATCH, sha)
            if one.returncode == 0:
                out.append(one.stdout)
                continue
            paths = _touched_paths(repo, sha)
            tail = b"" if paths is None else b"\n".join(b"\x03" + p for p in paths if p)
            out.append(COMMIT_MARK + sha.encode() + b"\n" + FAILED_MARK + (b"\n" + tail if tail else b"") + b"\n")
    return b"".join(out)


class BlobLines:
    """Line counts of files at a given commit, read through one ``git cat-file --batch``."""

    def __init__(self, repo: Path) -> None:
        self._proc = popen_git(repo, "cat-file", "--batch", stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def __call__(self, sha: str, path: bytes) -> int | None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(sha.encode() + b":" + path + b"\n")
        self._proc.stdin.flush()
        head = self._proc.stdout.readline().split()
        if len(head) < 3:  # "<name> missing" (or ambiguous): no content follows
            return None
        data = self._proc.stdout.read(int(head[2]) + 1)[:-1]  # read whatever it is, so the next answer lines up
        if head[1] != b"blob":
            return None
        return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait()


__all__ = ["COMMIT_MARK", "FAILED_MARK", "BlobLines", "change_log", "first_parent_shas"]
