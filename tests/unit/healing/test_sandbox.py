"""Generated fixes and corpus programs run in a sandbox (issue 18, part 1, "Generated fixes").

Each hostile program is tried in several variants. An assertion that needs a kernel layer this
machine lacks is skipped with the reason, never passed silently."""

import os
import socket
import time
from pathlib import Path

import pytest
from kforge.errors import InputError
from kforge.healing.corpus import Intended, Program
from kforge.healing.fixes import judge
from kforge.healing.sandbox import LAYERS, Limits, isolation, run_python

SECRET = "KFORGE_SANDBOX_TEST_SECRET"
FAST = Limits(timeout_s=2.0)


def _need(*layers: str) -> None:
    have = set(isolation()) | ({"landlock"} if "landlock-read" in isolation() else set())
    missing = [layer for layer in layers if layer not in have]
    if missing:
        pytest.skip(f"this machine lacks sandbox layer(s) {', '.join(missing)} (has {isolation() or 'none'})")


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for an init that does not reap counts as gone)."""
    for _ in range(500):                           # bounded wait for the kernel to finish the kill
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.01)
    return False


def test_runs_in_a_fresh_directory_with_only_the_files_it_is_given_and_an_empty_environment(monkeypatch):
    monkeypatch.setenv(SECRET, "s3cr3t")
    src = "import os, sys\nprint(sorted(os.listdir('.')))\nprint(sorted(os.environ))\nprint(sys.stdin.read() == '')\n"
    run = run_python(src, files={"data/train.csv": "a,b\n1,2\n"})
    assert run.code == 0, run.stderr
    listing, env, stdin_empty = run.stdout.splitlines()
    assert listing == "['.tmp', 'data', 'prog.py']"
    assert env == "['HOME', 'LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'PYTHONHASHSEED', 'TMPDIR']"
    assert stdin_empty == "True"
    assert run.isolation == isolation()
    assert run_python("print(hash('kforge'))").stdout == run_python("print(hash('kforge'))").stdout  # fixed seed


@pytest.mark.parametrize("rel", ["../escape.py", "/etc/evil", "a/../../b"])
def test_files_must_stay_inside_the_sandbox(rel):
    with pytest.raises(InputError, match="relative path inside the sandbox"):
        run_python("pass", files={rel: "x"})


def test_unknown_layer_is_refused():
    with pytest.raises(InputError, match="unknown sandbox layer"):
        run_python("pass", layers=["chroot"])


def test_a_secret_in_the_parent_environment_is_not_seen(monkeypatch):
    monkeypatch.setenv(SECRET, "s3cr3t")
    run = run_python(f"import os\nprint(os.environ.get({SECRET!r}))\nprint(os.path.expanduser('~'))")
    seen, home = run.stdout.splitlines()
    assert seen == "None"
    assert home != str(Path.home()) and "kforge-sandbox-" in home


def test_the_parent_environment_cannot_be_read_through_proc(monkeypatch):
    _need("landlock-read")
    monkeypatch.setenv(SECRET, "s3cr3t")
    run = run_python(f"print(open('/proc/{os.getpid()}/environ', 'rb').read().count(b's3cr3t'))")
    assert run.code != 0 and "PermissionError" in run.stderr and "s3cr3t" not in run.stdout


def test_judging_a_fix_does_not_hand_it_the_parent_environment(monkeypatch):
    """The old runner passed the whole environment on: a fix printing a secret met 'stdout: None'
    only by luck of the environment; now it always sees nothing."""
    monkeypatch.setenv(SECRET, "s3cr3t")
    prog = Program("leak", "import os\nprint(os.environ[KEY])\n", {},
                   Intended("prints nothing secret", "None", (), (("x", "y"),)))
    assert judge(prog, f"import os\nprint(os.environ.get({SECRET!r}))\n", "KeyError").success


@pytest.mark.parametrize("variant", ["env-path", "home", "absolute", "parent-dir", "symlink"])
def test_a_fix_cannot_write_outside_its_directory(variant, tmp_path, monkeypatch):
    target = tmp_path / "written-by-fix"
    monkeypatch.setenv("KFORGE_SANDBOX_TEST_TARGET", str(target))
    home_target = Path.home() / f"kforge-sandbox-test-{os.getpid()}"
    src = {
        "env-path": "import os\nopen(os.environ['KFORGE_SANDBOX_TEST_TARGET'], 'w').write('x')",
        "home": f"import os\np = os.path.expanduser('~/{home_target.name}')\nopen(p, 'w').write('x')\nprint(p)",
        "absolute": f"open({str(target)!r}, 'w').write('x')",
        "parent-dir": "import os\nopen(os.path.join('..', 'kforge-escape-' + str(os.getppid())), 'w').write('x')",
        "symlink": f"import os\nos.symlink({str(tmp_path)!r}, 'link')\nopen('link/written-by-fix', 'w').write('x')",
    }[variant]
    if variant in ("absolute", "parent-dir", "symlink"):
        _need("landlock-read")
    run = run_python(src)
    assert not target.exists() and not home_target.exists()
    if variant == "home":
        assert run.code == 0 and "kforge-sandbox-" in run.stdout    # it wrote into its own (deleted) home
    elif variant == "env-path":
        assert run.code == 1 and "KeyError" in run.stderr
    else:
        assert run.code == 1 and "PermissionError" in run.stderr, run.stderr


@pytest.mark.parametrize("how", ["os.fork", "subprocess", "multiprocessing"])
def test_a_fix_cannot_start_many_processes(how):
    if "seccomp" not in isolation() and os.geteuid() == 0:
        pytest.skip("root is not bound by RLIMIT_NPROC and this machine lacks the seccomp layer")
    spawn = {
        "os.fork": "pid = os.fork()\n        if pid == 0:\n            time.sleep(30)\n            os._exit(0)",
        "subprocess": "subprocess.Popen(['/bin/sleep', '30'])",
        "multiprocessing": "multiprocessing.Process(target=time.sleep, args=(30,)).start()",
    }[how]
    src = ("import multiprocessing, os, subprocess, time\nn = 0\ntry:\n    for _ in range(40):\n        "
           f"{spawn}\n        n += 1\nexcept OSError as exc:\n    print(type(exc).__name__)\nprint(n)\n")
    run = run_python(src, limits=Limits(timeout_s=5, processes=4))
    assert not run.timed_out, run.stderr
    started = int(run.stdout.split()[-1])
    assert started <= 4, run.stdout


@pytest.mark.parametrize("src", [
    "b = bytearray(4 << 30)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))",
    "import mmap\nm = mmap.mmap(-1, 2 << 30)",
])
def test_a_fix_cannot_allocate_too_much_memory(src):
    run = run_python(src, limits=Limits(timeout_s=10, memory_bytes=512 << 20))
    assert run.code == 1 and ("MemoryError" in run.stderr or "Cannot allocate memory" in run.stderr), run.stderr


@pytest.mark.parametrize("src", [
    "open('big', 'wb').write(b'x' * (4 << 20))",
    "with open('big', 'wb') as f:\n    for _ in range(8):\n        f.write(b'x' * (1 << 20))\n        f.flush()",
    "with open('big', 'wb') as f:\n    f.seek(1 << 30)\n    f.write(b'x')",
    "import tempfile\nwith tempfile.TemporaryFile() as f:\n    f.write(b'x' * (4 << 20))\n    f.flush()",
])
def test_a_fix_cannot_write_a_huge_file(src):
    run = run_python(src, limits=Limits(file_bytes=1 << 20))
    assert run.code == 1 and "File too large" in run.stderr, run.stderr


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_is_capped(stream):
    run = run_python(f"import sys\nsys.{stream}.write('y' * (8 << 20))", limits=Limits(output_bytes=4096))
    assert run.code == 0 and run.truncated
    assert len(getattr(run, stream)) == 4096


@pytest.mark.parametrize(("kind", "layers"), [
    ("tcp", None), ("udp", None), ("tcp", ("netns",)), ("udp", ("netns",)), ("tcp", ("seccomp",)), ("tcp", ("landlock",))])
def test_a_fix_cannot_reach_the_network(kind, layers):
    """A listener on 127.0.0.1 in the test process is never reached (no interface up in the network
    namespace; no socket() under seccomp; no TCP connect under Landlock ABI >= 4)."""
    if layers is None and not {"netns", "seccomp"} & set(isolation()):
        pytest.skip(f"this machine has neither a network namespace nor seccomp (has {isolation() or 'none'})")
    if layers is not None:
        _need(*layers)
    if layers == ("landlock",):
        from kforge.healing.sandbox_exec import landlock_abi
        if landlock_abi() < 4:
            pytest.skip("Landlock ABI < 4 cannot deny TCP connect")
    family = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, family) as srv:
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        if kind == "tcp":
            srv.listen()
            src = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\nprint('sent')"
        else:
            src = (f"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                   f"s.sendto(b'hi', ('127.0.0.1', {port}))\nprint('sent')")
        run = run_python(src, layers=layers)
        srv.setblocking(False)
        with pytest.raises(BlockingIOError):
            srv.accept() if kind == "tcp" else srv.recvfrom(16)
    assert run.code == 1 and "sent" not in run.stdout and ("Error" in run.stderr), run.stderr


@pytest.mark.parametrize("src", [
    "while True:\n    pass",
    "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass",
    "import time\nprint('started', flush=True)\ntime.sleep(3600)",
])
def test_a_fix_that_never_ends_is_killed(src):
    run = run_python(src, limits=Limits(timeout_s=1.0))
    assert (run.code, run.timed_out) == (124, True)
    assert "did not finish" in run.stderr


def test_the_whole_process_group_is_killed_on_timeout():
    """Without the kernel layers (fork allowed), the program and the child it forked both die."""
    src = ("import os, time\npid = os.fork()\nif pid == 0:\n    print('child', os.getpid(), flush=True)\n"
           "    while True:\n        time.sleep(0.05)\nprint('parent', os.getpid(), flush=True)\nwhile True:\n    pass\n")
    run = run_python(src, limits=Limits(timeout_s=1.5), layers=())
    assert run.timed_out
    pids = {line.split()[0]: int(line.split()[1]) for line in run.stdout.splitlines()}
    assert set(pids) == {"child", "parent"}
    assert all(_gone(pid) for pid in pids.values()), pids


@pytest.mark.parametrize("exit_first", [True, False])
def test_a_child_that_leaves_the_group_dies_with_the_pid_namespace(exit_first):
    """A child that calls setsid() escapes a process-group kill; in the PID namespace it dies anyway,
    whether the program exits at once or times out."""
    _need("pidns")
    src = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    print('child', os.readlink('/proc/self'), flush=True)\n"
           "    while True:\n        time.sleep(0.05)\ntime.sleep(0.3)\n" + ("" if exit_first else "while True:\n    pass\n"))
    run = run_python(src, limits=Limits(timeout_s=1.5), layers=("pidns",))
    assert run.timed_out is not exit_first
    outside_pid = int(run.stdout.split()[-1])
    assert _gone(outside_pid)


def test_isolation_is_probed_once_and_names_known_layers():
    assert set(isolation()) <= set(LAYERS)
    assert isolation() is isolation()
    if os.uname().sysname == "Linux" and os.uname().machine in ("x86_64", "aarch64"):
        assert "seccomp" in isolation(), "seccomp filters work on any Linux x86_64/aarch64 kernel kforge supports"
