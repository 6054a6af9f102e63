"""One runner for Python code kforge did not write: the shipped corpus programs and generated fixes.

Every run gets a fresh temporary directory holding only the program and the files it is given
(also its ``HOME`` and ``TMPDIR``), an empty environment (``PATH=/usr/bin:/bin``, a fixed
``PYTHONHASHSEED``, nothing of the parent's), stdin at ``/dev/null``, resource limits
(:class:`Limits`), output capped at ``Limits.output_bytes`` per stream, and on timeout its whole
process group killed. On Linux the launcher (:mod:`kforge.healing.sandbox_exec`) adds the kernel
layers of :data:`LAYERS` that this machine supports, probed once per process (:func:`isolation`);
each result says which layers applied. The interpreter runs as ``python -s -P``: ``-I`` without
``-E``, so the fixed hash seed holds (the environment is empty anyway).

Example::

    run = run_python("print(sum(range(4)))")
    run.code, run.stdout, run.isolation     # 0, '6\\n', ('netns', 'pidns', 'seccomp', 'landlock-read')
"""

import functools
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from kforge.errors import InputError, KforgeError

#: Kernel layers, strongest first: network + user namespace, PID namespace, syscall filter,
#: Landlock limiting writes and reads, or (when reads cannot be limited) writes only.
LAYERS = ("netns", "pidns", "seccomp", "landlock-read", "landlock")
TIMEOUT_CODE = 124
_LAUNCHER = str(Path(__file__).with_name("sandbox_exec.py"))
_FAILED_MARK = "kforge-sandbox: "


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    timeout_s: float = 20.0          # wall clock; then the process group is killed
    cpu_s: int = 20                  # RLIMIT_CPU
    memory_bytes: int = 1 << 30      # RLIMIT_AS (address space)
    file_bytes: int = 16 << 20       # RLIMIT_FSIZE (largest file it may write)
    processes: int = 16              # RLIMIT_NPROC (no effect for root; seccomp forbids forks anyway)
    open_files: int = 64             # RLIMIT_NOFILE
    output_bytes: int = 256 << 10    # kept per stream; the rest is read and dropped


@dataclass(frozen=True)
class SandboxRun:
    code: int                        # exit code; negative: killed by that signal; 124: timed out
    stdout: str
    stderr: str                      # sandbox paths shown relative to its directory
    isolation: tuple[str, ...]       # the kernel layers that applied (see LAYERS)
    timed_out: bool = False
    truncated: bool = False          # an output stream went over Limits.output_bytes


def _read_paths() -> list[str]:
    """What ``landlock-read`` lets a program read: the interpreter's prefixes and system directories."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                os.path.dirname(os.path.realpath(sys.executable))}
    system = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt/homebrew", "/nix/store",
              "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]     # not /proc, /sys, /dev/shm
    return sorted({os.path.realpath(p) for p in prefixes} | set(system))


def _env(root: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": root, "TMPDIR": os.path.join(root, ".tmp"), "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


def _write_files(root: str, files: Mapping[str, str | bytes]) -> None:
    for rel, content in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise InputError(f"sandbox file {rel!r} must be a relative path inside the sandbox")
        path = Path(root, *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exited_unreaped(pid: int) -> bool:
    """Whether ``pid`` has exited, leaving it a zombie so its process-group id cannot be reused yet."""
    if not hasattr(os, "waitid"):
        return True
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _collect(proc: subprocess.Popen, limits: Limits) -> tuple[bytes, bytes, bool, bool]:
    """Read both streams (keeping ``output_bytes`` of each) until the program ends or time runs out;
    then kill its process group (strays included) and reap it. (stdout, stderr, timed out, truncated)."""
    assert proc.stdout is not None and proc.stderr is not None
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    deadline, timed_out, truncated, drain_until = time.monotonic() + limits.timeout_s, False, False, 0.0
    with selectors.DefaultSelector() as sel:
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            if not drain_until and _exited_unreaped(proc.pid):
                drain_until = now + 0.5         # it is gone; a stray it left may still hold a pipe
            if (drain_until and now >= drain_until) or (not drain_until and now >= deadline):
                timed_out = not drain_until
                break
            events = sel.select(0 if drain_until else min(deadline - now, 0.1))
            if drain_until and not events:
                break
            for key, _ in events:
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                room = max(0, limits.output_bytes - len(buf))
                truncated |= len(chunk) > room
                buf += chunk[:room]
    while not timed_out and not _exited_unreaped(proc.pid):     # it closed its streams but runs on
        timed_out = time.monotonic() >= deadline
        time.sleep(0.005)
    _kill_group(proc.pid)       # before reaping: the group id cannot have been reused yet
    proc.wait()
    return bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()]), timed_out, truncated


def _run(source: str, name: str, files: Mapping[str, str | bytes], limits: Limits, layers: tuple[str, ...]) -> SandboxRun:
    if not name.isidentifier():
        raise InputError(f"sandbox program name {name!r} must be a Python identifier")
    with tempfile.TemporaryDirectory(prefix="kforge-sandbox-") as tmp:
        root = os.path.realpath(tmp)
        os.mkdir(os.path.join(root, ".tmp"))
        _write_files(root, {**files, f"{name}.py": source})
        env = _env(root)
        cfg = {"layers": list(layers), "root": root, "reads": _read_paths(), "env": env,
               "argv": [sys.executable, "-s", "-P", f"{name}.py"],
               "limits": {k: v for k, v in asdict(limits).items() if isinstance(v, int) and k != "output_bytes"}}
        proc = subprocess.Popen([sys.executable, "-I", "-S", _LAUNCHER, json.dumps(cfg)], cwd=root, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err, timed_out, truncated = _collect(proc, limits)
        finally:
            if proc.returncode is None:
                _kill_group(proc.pid)
                proc.wait()
            proc.stdout and proc.stdout.close()
            proc.stderr and proc.stderr.close()
    stdout, stderr = (b.decode("utf-8", "replace").replace(root + "/", "") for b in (out, err))
    if timed_out:
        return SandboxRun(TIMEOUT_CODE, stdout, stderr + f"\nTimeoutError: program did not finish in {limits.timeout_s:g} s\n",
                          layers, True, truncated)
    return SandboxRun(proc.returncode, stdout, stderr, layers, False, truncated)


_PROBE = """\
import csv, json, math, os, tempfile, threading
t = threading.Thread(target=lambda: None); t.start(); t.join()
d = tempfile.mkdtemp()
with open(os.path.join(d, "x"), "w") as fh:
    fh.write(json.dumps([math.pi]))
print("ok")
"""


def _works(layers: tuple[str, ...]) -> bool:
    run = _run(_PROBE, "probe", {}, Limits(timeout_s=20), layers)
    return run.code == 0 and run.stdout == "ok\n"


@functools.cache
def isolation() -> tuple[str, ...]:
    """The kernel layers (of :data:`LAYERS`) that work here, probed once per process, each together
    with those kept before it. Empty off Linux: then only the directory, environment, limits and
    process-group kill apply."""
    if not sys.platform.startswith("linux"):
        return ()
    kept: list[str] = []
    for layer in LAYERS:
        if layer == "landlock" and "landlock-read" in kept:
            continue
        if _works((*kept, layer)):
            kept.append(layer)
    return tuple(kept)


def run_python(source: str, name: str = "prog", *, files: Mapping[str, str | bytes] | None = None,
               limits: Limits = Limits(), layers: Sequence[str] | None = None) -> SandboxRun:
    """Run ``source`` as ``NAME.py`` in a fresh sandbox with ``files`` (relative path -> content) beside
    it. ``layers`` defaults to :func:`isolation`; naming a layer this machine lacks makes the run fail
    with a :class:`~kforge.errors.KforgeError` instead of running with less isolation than asked."""
    chosen = isolation() if layers is None else tuple(layers)
    unknown = set(chosen) - set(LAYERS)
    if unknown:
        raise InputError(f"unknown sandbox layer(s) {', '.join(sorted(unknown))} (known: {', '.join(LAYERS)})")
    run = _run(source, name, files or {}, limits, chosen)
    if run.code == 125 and run.stderr.startswith(_FAILED_MARK):
        raise KforgeError(f"the sandbox could not confine {name}.py: {run.stderr.removeprefix(_FAILED_MARK).strip()}")
    return run
