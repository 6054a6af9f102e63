"""Crash reports of kernels other than Linux: FreeBSD, NetBSD, OpenBSD, Fuchsia (Zircon), gVisor and Darwin (XNU).

syzbot fuzzes these systems too, and their consoles open a report in their own words: ``Fatal trap 12: page
fault while in kernel mode`` (FreeBSD), ``uvm_fault(...)`` / ``fatal page fault in supervisor mode`` (OpenBSD,
NetBSD), ``panic: <message>`` (the BSDs and Go programs such as gVisor), ``panic(cpu 0 caller 0x...): ...``
(Darwin), ``ZIRCON KERNEL PANIC`` / ``STARNIX KERNEL PANIC`` (Fuchsia), OpenBSD's ``witness: lock order reversal:``,
sanitizer reports (``ASan:``, ``MSan:``/``KMSAN:``, ``UBSan:``, ``Caught invalid memory access``) and gVisor's own
lines (``WARNING: DATA RACE``, ``FATAL ERROR:``, ``WARNING: BUG on``). The shapes follow the public report parsers
of syzkaller (``pkg/report/<os>.go``); the code and the patterns here are kforge's own. As there, an opening may sit
anywhere in a line, a few lines never open a report (``_SUPPRESS``), FreeBSD's witness warning is no report, and
Zircon's boot banner is weak evidence of an unexpected reboot (it counts only in a log with no other report).

:func:`recognise` names one line: the operating system and a marker from the same vocabulary as the Linux
parser (``page-fault``, ``gpf``, ``kasan-uaf``, ``kmsan``, ``lockdep-deadlock``, ``panic``, ...), so rules and
models that know a Linux page fault know a FreeBSD one. A ``panic:`` line is named by its message (a sanitizer,
an assertion, a fault, a lock error) and by the lines that follow (a Go stack makes it gVisor's). The marker follows
the words syzkaller keeps in its title: a sanitizer's "invalid access" is ``kasan`` even where a later detail
names a use-after-free, since the title (and so a title-based label) does not say so.

Example::

    recognise("Fatal trap 12: page fault while in kernel mode", [])   # Recognised("freebsd", "page-fault")
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

OTHER_SYSTEMS = ("freebsd", "netbsd", "openbsd", "fuchsia", "gvisor", "darwin")
_FOLLOW = 12   # lines after an opening that may refine it (Zircon's reason, a Go stack, a sanitizer's detail)


@dataclass(frozen=True)
class Recognised:
    os: str
    marker: str
    weak: bool = False   # only evidence when the log holds no other report (a boot banner: an unexpected reboot)


def _rx(p: str) -> re.Pattern[str]:
    return re.compile(p)


# What a report's message says, in the words of these systems (checked in order on the opening line, then on the
# next line for sanitizers whose detail follows).
_MESSAGE: list[tuple[re.Pattern[str], str]] = [
    # syzkaller titles these "ASan: Invalid access, 8-byte read in f" / "ASan: Unauthorized Access in f" /
    # "KASAN: invalid memory access in f": the kind of access (use-after-free, red zone) is not in the title
    (_rx(r"\bASan: (Invalid access|Unauthorized Access)|Caught invalid memory access"), "kasan"),
    (_rx(r"(ASan|KASAN|KASan)\b.*(double[- ]free|invalid[- ]free)|double pool_put"), "kasan-invalid-free"),
    (_rx(r"(ASan|KASAN|KASan)\b.*(UseAfter|use-after-free|[Ff]reed)|free list modified|modified (after free|on freelist)"),
     "kasan-uaf"),
    (_rx(r"(ASan|KASAN|KASan)\b.*([Rr]ed[Zz]one|out-of-bounds|Overflow)"), "kasan-oob"),
    (_rx(r"\bASan: |\bKASAN: |\bKASan: |Unauthorized Access"), "kasan"),
    (_rx(r"\bMSan: |\bKMSAN: |\bKMSan: |[Uu]ninitialized (Variable|Memory|memory)"), "kmsan"),
    (_rx(r"\bUBSan: |\bKUBSan: "), "ubsan"),
    (_rx(r"lock order reversal|circular locking|possible deadlock|recursive locking"), "lockdep-deadlock"),
    (_rx(r"\bof destroyed (mutex|rmlock|rwlock|sx)\b|lock error|recursed on non-recursive|locks? (still )?held|"
         r"owns a non-sleepable lock|sleeping thread .* owns|\bwitness\b|lockmgr|mtx_lock|_sleep: "), "lockdep-other"),
    (_rx(r"runtime error: invalid memory address or nil pointer dereference"), "null-deref"),
    (_rx(r"page fault"), "page-fault"),
    (_rx(r"(general )?protection fault"), "gpf"),
    (_rx(r"divide (error|fault)|integer divide"), "divide-error"),
    (_rx(r"double fault"), "double-fault"),
]

_ZIRCON_REASON: list[tuple[re.Pattern[str], str]] = [
    (_rx(r"ASSERT FAILED"), "panic"),
    (_rx(r"Supervisor Page Fault exception|page fault"), "page-fault"),
    (_rx(r"double fault"), "double-fault"),
    (_rx(r"General Protection Fault|general protection"), "gpf"),
    (_rx(r"recursion in interrupt handler|exception, halting"), "cpu-exception"),
]

_GO_STACK = _rx(r"^goroutine \d+ \[")
_BSD_TRAP_TYPE = _rx(r"Kernel trap at 0x[0-9a-f]+, type\s*(\d+)=([\w ]+)")


def _message_marker(text: str, default: str) -> str:
    for rx, marker in _MESSAGE:
        if rx.search(text):
            return marker
    return default


def _os_of_panic(following: list[str]) -> str:
    """Which system printed a bare ``panic:`` line, from what comes after it."""
    tail = "\n".join(following)
    if any(_GO_STACK.match(x) for x in following):
        return "gvisor"
    if re.search(r"netbsd:|Begin traceback|Stopped in pid|NetBSD", tail):
        return "netbsd"
    if re.search(r"KDB: stack backtrace|cpuid = \d+|db_trace_self|FreeBSD", tail):
        return "freebsd"
    if re.search(r"ddb\{\d+\}>|Stopped at\s|OpenBSD", tail):
        return "openbsd"
    return "bsd"


def _panic_line(text: str, following: list[str]) -> Recognised:
    msg = text.split("panic:", 1)[1] if "panic:" in text else text
    os_ = _os_of_panic(following)
    # a sanitizer often names the bad access on the next line: let the first following line refine the message
    marker = _message_marker(msg, "")
    if marker == "kasan" and following:
        marker = _message_marker(msg + " " + following[0], "kasan")
    return Recognised(os_, marker or "panic")


def _darwin(text: str) -> Recognised:
    m = _BSD_TRAP_TYPE.search(text)
    if m:
        kind = m.group(2).lower()
        marker = ("page-fault" if "page fault" in kind else "gpf" if "protection" in kind
                  else "divide-error" if "divide" in kind else "double-fault" if "double fault" in kind
                  else "cpu-exception")
        return Recognised("darwin", marker)
    return Recognised("darwin", _message_marker(text.split("):", 1)[-1], "panic"))


def _zircon(following: list[str]) -> Recognised:
    for line in following:
        for rx, marker in _ZIRCON_REASON:
            if rx.search(line):
                return Recognised("fuchsia", marker)
    return Recognised("fuchsia", "panic")


def _lock_order_reversal(following: list[str]) -> Recognised | None:
    """OpenBSD reports a reversal ("witness: reversal: a b"); FreeBSD's witness only warns (no report there)."""
    if re.search(r"first seen at|ddb\{\d+\}>|Stopped at\s|OpenBSD", "\n".join(following)):
        return Recognised("openbsd", "lockdep-deadlock")
    return None


def _named(os_: str, default: str) -> Callable[[str, list[str]], Recognised]:
    """An opening of one system whose marker is read from the line's own words (``default`` when they say nothing)."""
    return lambda t, f: Recognised(os_, _message_marker(t, default))


def _fixed(os_: str, marker: str, weak: bool = False) -> Callable[[str, list[str]], Recognised]:
    return lambda t, f: Recognised(os_, marker, weak)


# Like syzkaller's parsers, an opening may sit anywhere in a console line (two writers interleave, a log prefix
# precedes it). Lines matching _SUPPRESS never open a report: the executor's own crash on Fuchsia, boot chatter of
# Android and OpenBSD, postfix on NetBSD. "panic:" in a function name (skb_panic:), a sysctl (ddb.onpanic:,
# ddb.panic:) or a Rust path (std::panic::) is not an opening either. QEMU's "KVM internal error" (a Fuchsia
# report for syzkaller) may end any VM's log, so it is weak: it counts only in a log with no other report.
_SUPPRESS = _rx(r"<== fatal exception: process .+?syz.+?\[|xlog_status:|evtlog_status:|reorder_kernel|"
                r"event_init: unable to initialize")
PANIC = _rx(r"(?<![_.])(?<!ddb\.on)[Pp]anic:(?!:)")   # a panic line of the BSDs, Go (gVisor) and syzkaller's common list

# (opening regex on a prefix-stripped console line, how to name it: None = not a report after all). First match wins.
_OPENINGS: list[tuple[re.Pattern[str], Callable[[str, list[str]], Recognised | None]]] = [
    (_rx(r"ZIRCON KERNEL PANIC"), lambda t, f: _zircon(f)),
    (_rx(r"STARNIX KERNEL PANIC"), _fixed("fuchsia", "panic")),
    (_rx(r"KVM internal error"), _fixed("fuchsia", "panic", weak=True)),
    (_rx(r"panic\(cpu \d+"), lambda t, f: _darwin(t)),
    (_rx(r"Debugger: Unexpected kernel trap number"), _fixed("darwin", "cpu-exception")),
    (_rx(r"Fatal trap\b"), _named("freebsd", "cpu-exception")),
    (_rx(r"fault in supervisor mode"), _named("netbsd", "cpu-exception")),
    (_rx(r"uvm_fault\("), lambda t, f: Recognised("netbsd" if _os_of_panic(f) == "netbsd" else "openbsd", "page-fault")),
    (_rx(r"\bkernel: [\w ]+ trap\b"), _named("openbsd", "cpu-exception")),
    (_rx(r"Caught invalid memory access"), _fixed("openbsd", "kasan")),
    (_rx(r"witness: lock order reversal:"), _fixed("openbsd", "lockdep-deadlock")),
    (_rx(r"^lock order reversal:"), lambda t, f: _lock_order_reversal(f)),
    (_rx(r"witness: "), _fixed("openbsd", "lockdep-other")),
    (PANIC, _panic_line),
    (_rx(r"(?<![A-Za-z])(ASan: Unauthorized Access|MSan: |UBSan:|KASan: |KMSan: )"),
     lambda t, f: Recognised("netbsd", _message_marker(t + " " + (f[0] if f else ""), "kasan"))),
    (_rx(r"cleaned vnode"), _fixed("openbsd", "panic")),
    (_rx(r"<== fatal exception"), _fixed("fuchsia", "cpu-exception")),
    (_rx(r"recursion in interrupt handler"), _fixed("fuchsia", "cpu-exception")),
    (_rx(r"welcome to Zircon"), _fixed("fuchsia", "reboot", weak=True)),
    (_rx(r"WARNING: DATA RACE"), _fixed("gvisor", "kcsan")),
    (_rx(r"\b(SIGSEGV|SIGBUS):"), _fixed("gvisor", "page-fault")),
    (_rx(r"FATAL ERROR:"), _fixed("gvisor", "go-runtime")),
    (_rx(r"WARNING: BUG on "), _fixed("gvisor", "warning")),
    (_rx(r"Invalid request partialResult"), _fixed("gvisor", "panic")),
]

_ANY = re.compile("|".join(f"(?:{rx.pattern})" for rx, _ in _OPENINGS))

# Boot banners of these systems: a BIOS banner in such a log is their VM booting, not Linux rebooting unexpectedly.
_BANNER = _rx(r"Copyright \(c\) [\d-]+ The (FreeBSD Project|NetBSD Foundation)|Copyright \(c\) [\d-]+ OpenBSD|"
              r">> OpenBSD/\w+ BOOT|welcome to Zircon|Darwin Kernel Version")


def other_system_booted(log: str) -> bool:
    """Whether ``log`` shows the boot banner of one of these systems."""
    return bool(_BANNER.search(log))


def recognise(text: str, following: list[str]) -> Recognised | None:
    """The system and marker of a report opening on ``text`` (``following``: the next console lines)."""
    if not _ANY.search(text) or _SUPPRESS.search(text):
        return None
    for rx, name in _OPENINGS:
        if rx.search(text):
            found = name(text, following[:_FOLLOW])
            if found is not None:
                return found
    return None


# Stack frames of these systems: "vpanic() at vpanic+0x2c5/frame 0x...", "panic() at netbsd:panic+0x3c",
# "bt#03: 0x... sys_foo kernel/syscalls.cc:12", "pkg.(*T).Func(...)" (Go, the file on the next line).
_BSD_FRAME = _rx(r"^(?P<func>[A-Za-z_][\w.$]*)\([^)]*\) at (?:\w+:)?(?P=func)?\+?(?P<off>0x[0-9a-f]+)?")
_ZIRCON_FRAME = _rx(r"^bt#\d+:\s+(?:0x[0-9a-f]+|\[ inline \])\s+(?P<func>[A-Za-z_][\w:~]*)(?:\s+(?P<file>[\w./-]+):(?P<line>\d+))?")
_GO_FRAME = _rx(r"^(?P<func>[\w./-]+\.(?:\(\*?\w+\)\.)?\w+)\(.*\)$")
_GO_FILE = _rx(r"^\s*(?P<file>/[\w./-]+\.go):(?P<line>\d+)")

# Frames that report rather than cause a crash on these systems.
GENERIC_FRAMES = _rx(
    r"^(db_trace_self\w*|kdb_\w+|vpanic|panic|_panic|trap|trap_\w+|calltrap|Xtrap\w*|alltraps\w*|"
    r"__asan_\w+|kasan_\w+|__msan_\w+|kmsan_\w+|__ubsan_\w+|ubsan_\w+|witness_\w+|lockdebug_\w+|"
    r"mutex_abort|printf\w*|vpanic|platform_halt|exception_die|abort|kern_assert|__assert\w*|"
    r"runtime\.\w+|sentry\.panic\w*)$")


def frame_of(text: str, next_text: str = "") -> tuple[str, str, int] | None:
    """(function, file, line) of one stack line of these systems, or None."""
    m = _BSD_FRAME.match(text) or _ZIRCON_FRAME.match(text)
    if m:
        gd = m.groupdict()
        return m["func"], gd.get("file") or "", int(gd.get("line") or 0)
    m = _GO_FRAME.match(text)
    if m:
        f = _GO_FILE.match(next_text)
        func = m["func"].rsplit("/", 1)[-1].split(".", 1)[-1]   # drop the import path and package name
        return func, (f["file"] if f else ""), int(f["line"]) if f else 0
    return None
