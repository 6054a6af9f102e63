"""Running git: the one runner every git call goes through, repository checks, clear errors.

A repository kforge reads is data, not code. Its own config and attributes can name programs
git would run (textconv filters, external diff drivers, ``core.fsmonitor``, hooks, a GPG program
behind ``log.showSignature``, the ssh command or remote helper of a lazy fetch in a partial
clone, credential helpers). :func:`run_git` and :func:`popen_git` run git so that none of these
runs and the output is what plain git gives for a normal repository:

* diff-producing commands (``log``, ``show``, ``diff``, ``format-patch``, ``diff-tree``, ...)
  always get ``--no-textconv --no-ext-diff``;
* command-line ``-c`` overrides (:data:`SAFE_CONFIG`, the protected "command" scope, which beats
  any repository config) switch off fsmonitor, hooks, signature checks, pagers, ssh, credential
  helpers and every transport;
* the environment has no system or global config (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL``),
  no ``GIT_*`` variable of the caller's (``GIT_DIR``, ``GIT_EXTERNAL_DIFF``, ...), no prompts, no
  allowed transport (``GIT_ALLOW_PROTOCOL`` empty, which beats a repository's
  ``protocol.<name>.allow``) and no lazy fetch;
* the repository's clean/smudge filters (``filter.<driver>.*``: git runs them when it reads or
  writes the work tree) are emptied by name, read once per repository with ``git config``;
* git's ownership check (``safe.directory``) stays on; the directories the user trusts in their
  own system or global config are carried over on the command line.

Example::

    out = git(Path("/src/linux"), "log", "-p", "-1", "HEAD")   # runs with --no-textconv --no-ext-diff
"""

import functools
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from kforge.errors import InputError, NotARepositoryError

# Subcommands that produce diffs: they always get DIFF_SAFETY right after the subcommand name.
DIFF_COMMANDS = frozenset({"log", "show", "diff", "format-patch", "whatchanged", "diff-tree", "diff-index",
                           "diff-files"})
DIFF_SAFETY = ("--no-textconv", "--no-ext-diff")
# Command-scope overrides: these win over the repository's own config (git help config, SCOPES).
SAFE_CONFIG = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.sshCommand=false",
    "core.pager=cat",
    "credential.helper=",
    "protocol.allow=never",
    "log.showSignature=false",
    "gpg.program=false",
    "gpg.ssh.program=false",
    "gpg.x509.program=false",
)
# Set in every git child's environment (after every inherited GIT_* variable is dropped).
SAFE_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ALLOW_PROTOCOL": "",  # set and empty: no transport at all, whatever protocol.<name>.allow says
    "GIT_NO_LAZY_FETCH": "1",  # git >= 2.44; older versions are stopped by GIT_ALLOW_PROTOCOL
}
_KEEP_ENV = frozenset({"GIT_EXEC_PATH"})  # where git's own programs live: the installation's, not a repo's


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a git child: the caller's minus every ``GIT_*``, plus SAFE_ENV and ``extra``
    (kforge's own settings, e.g. ``GIT_INDEX_FILE`` for a throwaway index)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP_ENV}
    env.update(SAFE_ENV)
    env.update(extra or {})
    return env


@functools.lru_cache(maxsize=1)
def trusted_directories() -> tuple[str, ...]:
    """``safe.directory`` entries of the user's own system and global config (read once, never a repo's)."""
    env = {k: v for k, v in os.environ.items() if k in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
                                                          "GIT_CONFIG_NOSYSTEM", "GIT_EXEC_PATH")
           or not k.startswith("GIT_")}
    out: list[str] = []
    for scope in ("--system", "--global"):
        try:
            proc = subprocess.run(["git", "config", scope, "--get-all", "safe.directory"], env=env,
                                  capture_output=True, check=False, cwd=os.sep, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return ()
        out += proc.stdout.decode(errors="replace").splitlines()
    return tuple(out)


def _base_argv(repo: Path | None, config: Sequence[str], git_dir: bool) -> list[str]:
    argv = ["git", "--no-pager"]
    for item in (*config, *(f"safe.directory={d}" for d in trusted_directories()), *SAFE_CONFIG):
        argv += ["-c", item]
    if repo is not None:
        argv += [f"--git-dir={repo}"] if git_dir else ["-C", str(repo)]
    return argv


@functools.lru_cache(maxsize=256)
def filter_overrides(repo: Path, git_dir: bool = False) -> tuple[str, ...]:
    """``k=v`` settings that empty every ``filter.<driver>`` the repository's config defines (read once)."""
    try:
        proc = subprocess.run([*_base_argv(repo, (), git_dir), "config", "--null", "--name-only", "--get-regexp",
                               r"^filter\."], capture_output=True, env=git_env(), check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ()
    drivers = sorted({k.split(".", 1)[1].rsplit(".", 1)[0] for k in proc.stdout.decode(errors="replace").split("\0")
                      if k.count(".") >= 2})
    return tuple(f"filter.{d}.{key}" for d in drivers for key in ("clean=", "smudge=", "process=", "required=false"))


def git_argv(repo: Path | None, args: Sequence[str], *, config: Sequence[str] = (), git_dir: bool = False
             ) -> list[str]:
    """``git`` with the safe global options, then ``-C repo`` (or ``--git-dir=repo``), then ``args``
    (``args[0]`` is the subcommand; diff-producing ones get DIFF_SAFETY). ``config``: extra ``k=v``
    settings of kforge's own (e.g. ``core.quotePath=false``); they cannot undo SAFE_CONFIG."""
    overrides = filter_overrides(repo, git_dir) if repo is not None else ()
    argv = _base_argv(repo, (*config, *overrides), git_dir)
    if args:
        argv.append(args[0])
        if args[0] in DIFF_COMMANDS:
            argv += DIFF_SAFETY
        argv += args[1:]
    return argv


def _no_git(exc: OSError) -> InputError:
    return InputError(f"cannot run git ({exc.strerror or exc}): install git and put it on PATH")


def run_git(repo: Path | None, *args: str, input_bytes: bytes | None = None, env: Mapping[str, str] | None = None,
            config: Sequence[str] = (), git_dir: bool = False, timeout: float | None = None
            ) -> subprocess.CompletedProcess[bytes]:
    """Run git safely (see the module doc) and capture stdout and stderr; the caller reads the status.
    ``repo=None`` runs outside any repository option (``init``, ``patch-id``)."""
    try:
        return subprocess.run(git_argv(repo, args, config=config, git_dir=git_dir), input=input_bytes,
                              capture_output=True, env=git_env(env), check=False, timeout=timeout)
    except OSError as exc:
        raise _no_git(exc) from None


def popen_git(repo: Path | None, *args: str, stdin: int | IO[Any] | None = None,
              stdout: int | IO[Any] | None = subprocess.PIPE, stderr: int | IO[Any] | None = None,
              bufsize: int = -1, env: Mapping[str, str] | None = None, config: Sequence[str] = (),
              git_dir: bool = False) -> "subprocess.Popen[bytes]":
    """The streaming variant of :func:`run_git` (``git log`` pipes, ``cat-file --batch``, ``fast-import``)."""
    try:
        return subprocess.Popen(git_argv(repo, args, config=config, git_dir=git_dir), stdin=stdin, stdout=stdout,
                                stderr=stderr, bufsize=bufsize, env=git_env(env))
    except OSError as exc:
        raise _no_git(exc) from None


def git(repo: Path | None, *args: str, check: bool = True, input_bytes: bytes | None = None,
        config: Sequence[str] = (), git_dir: bool = False) -> bytes:
    """Run git in ``repo`` (see :func:`run_git`) and return stdout; raise InputError with git's message on failure."""
    proc = run_git(repo, *args, input_bytes=input_bytes, config=config, git_dir=git_dir)
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
    proc = run_git(p, "rev-parse", "--is-bare-repository", "--is-inside-git-dir", "--absolute-git-dir")
    if proc.returncode != 0:
        raise NotARepositoryError(
            f"{p} is not a git repository ({proc.stderr.decode(errors='replace').strip() or 'git rev-parse failed'})"
        )
    bare, in_git_dir, git_dir = proc.stdout.decode(errors="surrogateescape").splitlines()[:3]
    if bare == "true":
        return Path(git_dir).resolve()
    if in_git_dir == "true":  # inside repo/.git: the repository is its work tree
        git_dir_path = Path(git_dir).resolve()
        return git_dir_path.parent if git_dir_path.name == ".git" else git_dir_path
    top = run_git(p, "rev-parse", "--show-toplevel")
    if top.returncode != 0 or not top.stdout.strip():
        raise NotARepositoryError(f"{p}: git cannot tell the repository's top level "
                                  f"({top.stderr.decode(errors='replace').strip()})")
    return Path(top.stdout.decode(errors="surrogateescape").rstrip("\n")).resolve()


def resolve_ref(repo: Path, ref: str) -> str | None:
    """The commit sha ``ref`` points to, or None when the repository has no commits yet."""
    proc = run_git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return proc.stdout.decode().strip() or None


def is_shallow(repo: Path) -> bool:
    return git(repo, "rev-parse", "--is-shallow-repository", check=False).strip() == b"true"


def rev_list(repo: Path, ref: str) -> list[str]:
    """All commits reachable from ``ref``, oldest first."""
    out = git(repo, "rev-list", "--reverse", "--topo-order", ref)
    return out.decode().split()


__all__ = ["DIFF_COMMANDS", "DIFF_SAFETY", "SAFE_CONFIG", "SAFE_ENV", "check_repository", "git", "git_argv",
           "git_env", "filter_overrides", "is_shallow", "popen_git", "resolve_ref", "rev_list", "run_git", "trusted_directories"]
