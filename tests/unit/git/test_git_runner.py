"""Every git call runs through one safe runner (kforge.git.gitcmd): a repository's own config,
attributes and hooks, and the caller's GIT_* environment, never make kforge run a program.

The hostile repository below tries each way a repository can name a program for git to run;
each program only writes a marker file. Every kforge operation that reads a repository is run
on it and no marker may appear. A last test scans the package so that a new direct
``subprocess`` call to git (a bypass of the runner) fails the suite.
"""

import ast
import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kforge.errors import InputError, NotARepositoryError
from kforge.git import gitcmd

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "platform" / "kforge"
ATTACKS = ["textconv", "drvcmd", "extdiff", "fsmonitor", "gpg", "ssh", "ext", "cred", "askpass", "editor", "pager",
           "alias", "clean", "smudge", "process", "env_extdiff", "env_fsmonitor", "env_ssh", "env_params"]
HOOKS = ["applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "prepare-commit-msg", "commit-msg",
         "post-commit", "pre-rebase", "post-checkout", "post-merge", "pre-push", "pre-auto-gc", "post-rewrite",
         "reference-transaction", "post-index-change", "fsmonitor-watchman", "push-to-checkout", "pre-receive",
         "update", "post-update", "sendemail-validate"]
PLAIN_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
             "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def _sh(repo: Path, *args: str, data: bytes | None = None) -> str:
    """Plain git for building fixtures (the test's own, never kforge's runner)."""
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org", "-C", str(repo), *args],
                          input=data, capture_output=True, check=True, env=PLAIN_ENV).stdout.decode().strip()


def _program(bin_dir: Path, marks: Path, name: str) -> str:
    """A program that records that it ran, then behaves (cat its file argument, if any)."""
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\ntouch "{marks / name}"\nfor a; do [ -f "$a" ] && cat "$a" && break; done\nexit 0\n')
    path.chmod(0o755)
    return str(path)


def _commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
    _sh(repo, "add", "-A")
    _sh(repo, "commit", "-q", "-m", message)


def _signed_commit(repo: Path, files: dict[str, str], message: str) -> None:
    """A commit carrying a (fake) gpgsig header: ``log.showSignature`` would run ``gpg.program`` on it."""
    for name, text in files.items():
        (repo / name).write_text(text)
    _sh(repo, "add", "-A")
    tree, parent = _sh(repo, "write-tree"), _sh(repo, "rev-parse", "HEAD")
    body = (f"tree {tree}\nparent {parent}\nauthor T <t@example.org> 1700000000 +0000\n"
            f"committer T <t@example.org> 1700000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n"
            f" iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\n{message}\n")
    sha = _sh(repo, "hash-object", "-t", "commit", "-w", "--stdin", data=body.encode())
    _sh(repo, "update-ref", "refs/heads/master", sha)


class Hostile:
    def __init__(self, repo: Path, marks: Path, shas: list[str]) -> None:
        self.repo, self.marks, self.shas = repo, marks, shas

    def fired(self) -> list[str]:
        return sorted(p.name for p in self.marks.iterdir())


@pytest.fixture()
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hostile:
    """A partial clone whose config, attributes and hooks name a marker program for every hook point;
    the caller's environment carries GIT_* variables that would do the same; one blob is missing."""
    marks, bin_dir, repo = tmp_path / "marks", tmp_path / "bin", tmp_path / "hostile"
    marks.mkdir()
    bin_dir.mkdir()
    prog = {name: _program(bin_dir, marks, name) for name in ATTACKS}
    _sh(tmp_path, "init", "-q", "-b", "master", str(repo))
    _commit(repo, {".gitattributes": "*.txt diff=evil\n*.c diff=evil\n*.flt diff=evil filter=evil\n",
                   "a.txt": "a\n", "x.c": "int f(void)\n{\n\treturn 0;\n}\n", "z.flt": "filtered\n", "n.md": "n\n"}, "one")
    _commit(repo, {"a.txt": "a\nb\n", "x.c": "int f(void)\n{\n\treturn 1;\n}\n", "z.flt": "f\n", "n.md": "m\n"}, "two")
    _signed_commit(repo, {"a.txt": "a\nb\nc\n"}, "three (signed)")
    _commit(repo, {"a.txt": "a\nb\nc\nd\n", "b.dat": "secret\n"}, "four: its blob b.dat goes missing")
    blob = _sh(repo, "rev-parse", "HEAD:b.dat")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a lazy fetch would try the promisor remotes
    shas = _sh(repo, "rev-list", "--reverse", "HEAD").split()
    config = {
        "diff.evil.textconv": prog["textconv"], "diff.evil.command": prog["drvcmd"],
        "diff.external": prog["extdiff"], "core.fsmonitor": prog["fsmonitor"],
        "log.showSignature": "true", "gpg.program": prog["gpg"], "gpg.ssh.program": prog["gpg"],
        "core.repositoryformatversion": "1", "extensions.partialClone": "evilssh",
        "remote.evilssh.url": "ssh://example.invalid/x.git", "remote.evilssh.promisor": "true",
        "core.sshCommand": prog["ssh"],
        "remote.evilext.url": f"ext::{prog['ext']}", "remote.evilext.promisor": "true",
        "protocol.allow": "always", "protocol.ext.allow": "always",
        "credential.helper": f"!{prog['cred']}", "core.askPass": prog["askpass"], "core.editor": prog["editor"],
        "core.pager": prog["pager"], "pager.log": prog["pager"], "pager.show": prog["pager"],
        "alias.log": f"!{prog['alias']}", "alias.show": f"!{prog['alias']}",
        "filter.evil.clean": prog["clean"], "filter.evil.smudge": prog["smudge"],
        "filter.evil.process": prog["process"], "filter.evil.required": "true",
    }
    for key, value in config.items():
        _sh(repo, "config", key, value)
    for hook in HOOKS:   # git's default hooks directory, and every hook name
        (repo / ".git" / "hooks" / hook).write_text(f'#!/bin/sh\ntouch "{marks / "hook"}"\nexit 0\n')
        (repo / ".git" / "hooks" / hook).chmod(0o755)
    # what a caller's environment could carry into git
    decoy = tmp_path / "decoy"
    _sh(tmp_path, "init", "-q", "-b", "master", str(decoy))
    _commit(decoy, {"d.txt": "decoy\n"}, "decoy")
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", prog["env_extdiff"])
    monkeypatch.setenv("GIT_SSH_COMMAND", prog["env_ssh"])
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", prog["env_fsmonitor"])
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'diff.external'='{prog['env_params']}'")
    monkeypatch.setenv("GIT_PAGER", prog["pager"])
    return Hostile(repo, marks, shas)


def _ingest(h: Hostile, warehouse: Any) -> None:
    from kforge.git.ingest import ingest_repository

    report = ingest_repository(h.repo, warehouse, name="hostile")
    assert report.commits_added == len(h.shas)          # the hostile repo itself, not $GIT_DIR's decoy
    assert report.quarantined >= 1                       # the commit whose blob is missing


def _extract_diffs(h: Hostile, warehouse: Any) -> None:
    from kforge.git.diffs import extract_diffs

    frame, failed = extract_diffs(h.repo, "hostile", h.shas)
    assert frame.height >= 3 and failed == h.shas[frame.height:]
    assert "+c" in frame["diff"][2]                      # git's own diff of the signed commit


def _change_log(h: Hostile, warehouse: Any) -> None:
    from kforge.git.line_log import FAILED_MARK, change_log

    log = change_log(h.repo, h.shas, chunk=2)            # a failing chunk falls back to show + diff-tree
    assert FAILED_MARK in log and b"+d" not in log.split(FAILED_MARK)[-1]


def _blob_lines(h: Hostile, warehouse: Any) -> None:
    from kforge.git.line_log import BlobLines

    lines = BlobLines(h.repo)
    try:
        assert lines(h.shas[2], b"a.txt") == 3
        assert lines(h.shas[3], b"b.dat") is None      # missing: no lazy fetch
    finally:
        lines.close()


def _patch_ids(h: Hostile, warehouse: Any) -> None:
    from kforge.mail.match import commit_patch_ids, project_commits

    assert project_commits(h.repo).height == len(h.shas)
    with contextlib.suppress(InputError):                # the missing blob ends git log -p
        commit_patch_ids(h.repo)


def _public_inbox(h: Hostile, warehouse: Any) -> None:
    from kforge.mail.archive import public_inbox_messages

    assert list(public_inbox_messages(h.repo)) == []    # no ``m`` blobs: not an archive, but git ran


def _tree_reader(h: Hostile, warehouse: Any) -> None:
    from kforge.generation.patch_repair import tree_reader

    read = tree_reader(h.repo, h.shas[3])
    assert read("a.txt") == "a\nb\nc\nd\n" and read("b.dat") is None


def _apply_check(h: Hostile, warehouse: Any) -> None:
    from kforge.generation.evaluate import git_apply_check

    patch = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,3 @@\n a\n b\n+c\n"
    assert git_apply_check(h.repo, h.shas[1], patch)


def _runner_diff_commands(h: Hostile, warehouse: Any) -> None:
    first, third = h.shas[0], h.shas[2]
    assert b"+c" in gitcmd.git(h.repo, "diff", first, third)
    assert b"+c" in gitcmd.git(h.repo, "show", third)
    assert b"+c" in gitcmd.git(h.repo, "format-patch", "--stdout", f"{first}..{third}")
    assert b"+c" in gitcmd.git(h.repo, "diff-tree", "-p", third)
    gitcmd.git(h.repo, "diff", check=False)              # work tree against the index: fsmonitor's hook point
    gitcmd.git(h.repo, "status", check=False)
    gitcmd.git(h.repo, "fetch", "evilssh", check=False)  # even an explicit fetch runs no transport
    gitcmd.git(h.repo, "fetch", "evilext", check=False)


OPERATIONS: dict[str, Callable[[Hostile, Any], None]] = {
    "ingest": _ingest, "extract_diffs": _extract_diffs, "change_log": _change_log, "blob_lines": _blob_lines,
    "patch_ids": _patch_ids, "public_inbox": _public_inbox, "tree_reader": _tree_reader,
    "apply_check": _apply_check, "runner_diff_commands": _runner_diff_commands,
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_no_program_named_by_a_repository_runs(hostile: Hostile, warehouse: Any, operation: str):
    OPERATIONS[operation](hostile, warehouse)
    assert hostile.fired() == [], f"{operation} ran programs named by the repository or environment"


def test_the_hostile_repository_is_hostile_to_plain_git(hostile: Hostile):
    """The fixture is not toothless: plain git, called as kforge called it before, runs its programs."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}

    def plain(*args: str) -> set[str]:
        subprocess.run(["git", "-C", str(hostile.repo), *args], capture_output=True, env=env, check=False)
        fired = set(hostile.fired())
        for p in hostile.marks.iterdir():
            p.unlink()
        return fired

    assert {"gpg", "textconv"} <= plain("log", "-p", "--no-ext-diff", "--format=%H", hostile.shas[2])
    # textconv wants a file: log -p reuses a work-tree file whose blob matches, through its filter
    assert {"textconv", "process"} <= plain("log", "-p", "--no-ext-diff", "--format=%H", hostile.shas[1])
    assert {"env_ssh", "ext"} <= plain("log", "-p", "--no-ext-diff", "--format=%H", "-1", hostile.shas[3])
    assert "env_fsmonitor" in plain("diff-tree", "-r", "--root", hostile.shas[0])
    env.pop("GIT_SSH_COMMAND"), env.pop("GIT_CONFIG_COUNT")
    assert {"ssh", "ext"} <= plain("cat-file", "-p", f"{hostile.shas[3]}:b.dat")
    assert "fsmonitor" in plain("diff-tree", "-r", "--root", hostile.shas[0])
    # a stat-dirty file (same bytes, new mtime): git must run its clean filter to compare, whatever second the
    # fixture's commit and index happened to share (otherwise this depended on racy-git timing)
    later = time.time() + 60
    os.utime(hostile.repo / "z.flt", (later, later))
    assert "process" in plain("diff")
    first, second = hostile.shas[:2]
    assert "drvcmd" in plain("diff", first, second, "--", "x.c")
    assert "env_extdiff" in plain("diff", first, second, "--", "n.md")
    env.pop("GIT_EXTERNAL_DIFF")
    assert "env_params" in plain("diff", first, second, "--", "n.md")
    env.pop("GIT_CONFIG_PARAMETERS")
    assert "extdiff" in plain("diff", first, second, "--", "n.md")


def test_output_is_plain_gits_for_a_normal_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Same bytes as plain git, built-in diff drivers (``diff=cpp`` hunk headers) included."""
    repo = tmp_path / "normal"
    _sh(tmp_path, "init", "-q", "-b", "master", str(repo))
    _commit(repo, {".gitattributes": "*.c diff=cpp\n", "x.c": "int f(void)\n{\n\tint a;\n\n\n\n\treturn 0;\n}\n"},
            "one")
    _commit(repo, {"x.c": "int f(void)\n{\n\tint a;\n\n\n\n\treturn 1;\n}\n", "y.bin": "\0\1\2"}, "two\n\nbody")
    args = ["log", "-p", "--stat", "--numstat", "--format=%H%x1f%P%x1f%an%x1f%B", "--no-color"]
    plain = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=PLAIN_ENV, check=True).stdout
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))
    assert gitcmd.git(repo, *args) == plain
    assert b"@@ int f(void)" in plain and b"Binary files" in plain


def test_argv_and_environment():
    argv = gitcmd.git_argv(Path("/r"), ["log", "-p"], config=["core.quotePath=false"])
    assert argv[:2] == ["git", "--no-pager"] and argv[argv.index("-C"):argv.index("log")] == ["-C", "/r"]
    assert argv[argv.index("log"):] == ["log", "--no-textconv", "--no-ext-diff", "-p"]
    settings = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    assert settings[0] == "core.quotePath=false" and settings[-len(gitcmd.SAFE_CONFIG):] == list(gitcmd.SAFE_CONFIG)
    assert gitcmd.git_argv(Path("/r"), ["rev-list", "HEAD"])[-2:] == ["rev-list", "HEAD"]
    assert gitcmd.git_argv(Path("/g"), ["cat-file"], git_dir=True)[-2:] == ["--git-dir=/g", "cat-file"]
    env = gitcmd.git_env({"GIT_INDEX_FILE": "/tmp/i"})
    assert env["GIT_INDEX_FILE"] == "/tmp/i" and env["GIT_ALLOW_PROTOCOL"] == "" and env["GIT_CONFIG_NOSYSTEM"] == "1"


def test_missing_git_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="cannot run git"):
        gitcmd.git(tmp_path, "status")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown a repository")
def test_ownership_check_stays_on_and_the_users_trust_list_is_carried(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    repo = tmp_path / "theirs"
    _sh(tmp_path, "init", "-q", "-b", "master", str(repo))
    _commit(repo, {"a.txt": "a\n"}, "one")
    for p in [repo, *repo.rglob("*")]:
        os.lchown(p, 4242, 4242)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    gitcmd.trusted_directories.cache_clear()
    try:
        with pytest.raises(NotARepositoryError, match="dubious ownership"):
            gitcmd.check_repository(repo)
        trust = tmp_path / "gitconfig"
        trust.write_text(f"[safe]\n\tdirectory = {repo}\n")
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(trust))
        gitcmd.trusted_directories.cache_clear()
        assert gitcmd.check_repository(repo) == repo.resolve()
    finally:
        gitcmd.trusted_directories.cache_clear()


# -- no bypass ---------------------------------------------------------------------------------

SPAWNERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput", "system", "popen",
            "execv", "execvp", "execvpe", "execl", "execlp", "execlpe", "spawnv", "spawnvp", "spawnl", "spawnlp",
            "posix_spawn", "posix_spawnp", "create_subprocess_exec", "create_subprocess_shell"}


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _git_argv_literals(tree: ast.AST) -> list[int]:
    """Lines of list/tuple literals starting with "git" and of process spawns given a git command line."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "git":
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args and _callee(node) in SPAWNERS:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and (
                    first.value == "git" or first.value.startswith("git ")):
                lines.append(node.lineno)
    return sorted(lines)


def test_the_bypass_scan_sees_a_bypass():
    code = ('import subprocess, os\nsubprocess.run(["git", "log"])\ncmd = ("git", "show")\nos.system("git log -p")\n'
            'os.execvp("git", args)\nraise RuntimeError("git log failed")\n')
    assert _git_argv_literals(ast.parse(code)) == [2, 3, 4, 5]


def test_git_runs_only_through_gitcmd():
    runner = PACKAGE / "git" / "gitcmd.py"
    bypasses = [f"{p.relative_to(ROOT)}:{line}" for p in sorted(PACKAGE.rglob("*.py")) if p != runner
                for line in _git_argv_literals(ast.parse(p.read_text(), str(p)))]
    assert bypasses == [], "call git through kforge.git.gitcmd (run_git / popen_git / git), not subprocess"
