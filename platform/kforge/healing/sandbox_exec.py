"""The sandbox launcher: confines itself, then execs the program (run by :mod:`kforge.healing.sandbox`).

Run as a script (``python -I -S sandbox_exec.py CONFIG_JSON``) in a fresh, single-threaded process, so
nothing here races a parent's threads (``preexec_fn`` would). Standard library only. Each layer the
config asks for is applied or the launcher exits 125 with ``kforge-sandbox: <why>`` on stderr: a
layer that was asked for never silently goes missing. Layers, in the order applied:

* ``netns`` / ``pidns``: unshare(2) a user namespace (own uid mapped to itself) with a fresh
  network namespace (no interface but a down loopback) and/or a PID namespace; with ``pidns`` the
  launcher forks, the program is init of the namespace, and everything it starts dies with it.
* rlimits: CPU seconds, address space, file size, processes, open files, no core files.
* ``seccomp``: no new processes (fork, vfork, clone without CLONE_THREAD, clone3), no sockets,
  no ptrace, namespaces, mounts, bpf, perf events, userfaultfd, io_uring or keyrings.
* ``landlock``: writes only beneath the sandbox directory; ``landlock-read`` also limits reads to
  the interpreter's prefixes and system directories. On Landlock ABI >= 4 TCP bind/connect are
  denied, on ABI >= 6 signals and abstract unix sockets outside the sandbox.
"""

import ctypes
import json
import os
import resource
import signal
import struct
import sys

FAILED = 125
_CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_NEWPID, _CLONE_THREAD = 0x10000000, 0x40000000, 0x20000000, 0x00010000
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 1, 38, 22, 2

# (audit arch, x32 bit, {denied syscall: errno}, clone nr) per machine; fork/vfork exist on x86_64 only.
_EPERM, _ENOSYS = 1, 38
_SYSCALLS = {
    "x86_64": (0xC000003E, 0x40000000, {57: _EPERM, 58: _EPERM, 435: _ENOSYS, 41: _EPERM, 53: _EPERM, 101: _EPERM,
                                       272: _EPERM, 308: _EPERM, 165: _EPERM, 321: _EPERM, 298: _EPERM, 323: _EPERM,
                                       425: _EPERM, 248: _EPERM, 249: _EPERM, 250: _EPERM}, 56),
    "aarch64": (0xC00000B7, 0, {435: _ENOSYS, 198: _EPERM, 199: _EPERM, 117: _EPERM, 97: _EPERM, 268: _EPERM,
                                40: _EPERM, 280: _EPERM, 241: _EPERM, 282: _EPERM, 425: _EPERM, 217: _EPERM,
                                218: _EPERM, 219: _EPERM}, 220),
}

_libc = ctypes.CDLL(None, use_errno=True)


def _fail(why: str) -> None:
    os.write(2, f"kforge-sandbox: {why}\n".encode())
    os._exit(FAILED)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        _fail(f"{what}: {os.strerror(ctypes.get_errno())}")
    return rc


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _namespaces(netns: bool, pidns: bool) -> None:
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(_CLONE_NEWUSER | (_CLONE_NEWNET if netns else 0) | (_CLONE_NEWPID if pidns else 0)), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _rlimits(limits: dict[str, int]) -> None:
    for name, value in (("RLIMIT_CPU", limits["cpu_s"]), ("RLIMIT_AS", limits["memory_bytes"]),
                        ("RLIMIT_FSIZE", limits["file_bytes"]), ("RLIMIT_NPROC", limits["processes"]),
                        ("RLIMIT_NOFILE", limits["open_files"]), ("RLIMIT_CORE", 0)):
        soft, hard = resource.getrlimit(getattr(resource, name))
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(getattr(resource, name), (value, value))


def _seccomp() -> None:
    spec = _SYSCALLS.get(os.uname().machine)
    if spec is None:
        _fail(f"seccomp: no syscall table for {os.uname().machine}")
    arch, x32, denied, clone = spec
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if x32:
        prog += [(jge, 0, 1, x32), (ret, 0, 0, 0x50000 | _EPERM)]
    for nr, errno in denied.items():
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, 0x50000 | errno)]
    prog += [(jeq, 0, 4, clone), (ld, 0, 0, 16), (jset, 0, 1, _CLONE_THREAD), (ret, 0, 0, allow),
             (ret, 0, 0, 0x50000 | _EPERM), (ret, 0, 0, allow)]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog))
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
    _check(_libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0), "seccomp")


_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_FS_READ = 1 | 4 | 8                       # execute, read file, read dir
_FILE_RIGHTS = 1 | 2 | 4 | (1 << 14) | (1 << 15)   # rights a rule on a non-directory may carry


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none)."""
    return max(0, _libc.syscall(_LL_CREATE, None, 0, 1))


def _landlock(root: str, reads: list[str] | None) -> None:
    abi = landlock_abi()
    if abi < 1:
        _fail("landlock: not supported by this kernel")
    fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    if reads is None:
        fs &= ~_FS_READ
    net, scoped = (3 if abi >= 4 else 0), (3 if abi >= 6 else 0)
    attr = struct.pack("QQQ", fs, net, scoped)[: 24 if abi >= 6 else 16 if abi >= 4 else 8]
    fd = _check(_libc.syscall(_LL_CREATE, ctypes.c_char_p(attr), len(attr), 0), "landlock_create_ruleset")
    rules = [(root, fs), ("/dev/null", (2 | 4 | (1 << 14)) & fs)] + [(p, _FS_READ) for p in reads or []]
    for path, access in rules:
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue                    # a system directory this machine does not have
        if not os.path.isdir(path):
            access &= _FILE_RIGHTS
        rule = struct.pack("=Qi", access, pfd)
        _check(_libc.syscall(_LL_ADD_RULE, fd, 1, ctypes.c_char_p(rule), 0), f"landlock rule for {path}")
        os.close(pfd)
    _check(_libc.syscall(_LL_RESTRICT, fd, 0), "landlock_restrict_self")
    os.close(fd)


def _confine_and_exec(cfg: dict) -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _rlimits(cfg["limits"])
    if cfg["layers"]:
        _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if "landlock" in cfg["layers"] or "landlock-read" in cfg["layers"]:
        _landlock(cfg["root"], cfg["reads"] if "landlock-read" in cfg["layers"] else None)
    if "seccomp" in cfg["layers"]:
        _seccomp()
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def main(cfg: dict) -> None:
    layers = cfg["layers"]
    try:
        if "netns" in layers or "pidns" in layers:
            _namespaces("netns" in layers, "pidns" in layers)
        if "pidns" not in layers:
            _confine_and_exec(cfg)
        pid = os.fork()                 # the program is init of the new PID namespace
        if pid == 0:
            _confine_and_exec(cfg)
    except Exception as exc:           # noqa: BLE001 - any failure to confine is reported, never ignored
        _fail(f"{type(exc).__name__}: {exc}")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
