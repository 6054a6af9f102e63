"""Parse a Linux kernel console log into structured crash fields.

Robust to console noise: timestamps (``[  12.345678]``), thread/CPU tags (``[ T2148]``, ``[C1]``),
syslog levels (``<4>``), interleaved lines of other threads and boot chatter. The crash line is the
first line matching a known oops marker (ordered as in syzkaller's report parser, simplified);
frames are collected from the call trace after it, from the same console thread where tags exist.

Example::

    crash = parse_kernel_log(log_text)
    crash.crash_line        # 'BUG: KASAN: use-after-free in ip6_send_skb+0x2f5/0x330 net/ipv6/ip6_output.c:1748'
    crash.guilty.function   # 'ip6_send_skb'
    crash.access            # {'kind': 'read', 'size': 8, 'address': 'ffff88004fab1858'}
"""

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from kforge.healing.os_reports import (
    GENERIC_FRAMES,
    PANIC,
    Recognised,
    frame_of,
    other_system_booted,
    recognise,
)

_PREFIX = re.compile(r"^(?:\*\* \d+ printk messages dropped \*\*\s*)?(?:<\d+>)?(?:\s*\[\s*\d+\.\d+\])?"
                     r"(?:\s*\[\s*([TC]\d+)\])?\s?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# (marker name, regex on a prefix-stripped line). Order matters only for ties on the same line.
OOPS_MARKERS: list[tuple[str, re.Pattern[str]]] = [(n, re.compile(p)) for n, p in [
    ("kasan-invalid-free", r"KASAN: (double-free|invalid-free)"),
    ("kasan-null-deref", r"BUG: KASAN: null-ptr-deref|^\s*KASAN: null-ptr-deref (Read|Write|in \w)"),
    ("kasan-wild", r"KASAN: (wild|user)-memory-access"),
    ("kasan-uaf", r"KASAN: (slab-)?use-after-free"),
    ("kasan-oob", r"KASAN: (slab-|stack-|global-|vmalloc-)?out-of-bounds"),
    ("kasan", r"BUG: KASAN: |^\s*KASAN: (?!null-ptr-deref in range)"),
    ("kmsan-infoleak", r"KMSAN: kernel-(usb-)?infoleak"),
    ("kmsan", r"BUG: KMSAN: |^\s*KMSAN: "),
    ("kcsan", r"BUG: KCSAN: "),
    ("kfence", r"BUG: KFENCE: "),
    ("ubsan", r"UBSAN: "),
    ("memory-leak", r"BUG: memory leak"),
    ("null-deref", r"BUG: unable to handle kernel NULL pointer dereference|"
                   r"Unable to handle kernel NULL pointer dereference|BUG: kernel NULL pointer dereference"),
    ("page-fault", r"BUG: unable to handle (kernel|page fault)|Unable to handle kernel (paging request|access)"),
    ("soft-lockup", r"BUG: soft lockup|watchdog: BUG: soft lockup"),
    ("sleep-atomic", r"BUG: (sleeping function called from invalid context|scheduling while atomic)"),
    ("stack-guard", r"BUG: (TASK )?stack guard page|kernel stack overflow|Kernel stack overflow"),
    ("bad-page", r"BUG: Bad page (state|map)"),
    ("list-corruption", r"list_(add|del) corruption|BUG: corrupted list|kernel BUG at lib/list_debug\.c"),
    ("usercopy", r"usercopy: Kernel memory (exposure|overwrite) attempt|kernel BUG at mm/usercopy\.c"),
    ("lockdep-bug", r"BUG: (spinlock|rwlock) \w+|BUG: using \w+\(\) in preemptible|BUG: Invalid wait context"),
    ("lockdep-other", r"still has locks held!|bad unlock balance detected|BUG: held lock freed"),
    ("bug-other", r"(^|[\s:\[])BUG: [A-Za-z_]"),
    ("slab-bug", r"^BUG [\w.:-]+ \([^)]*\): \w"),
    ("lockdep-deadlock", r"possible (circular|recursive) locking (dependency )?detected|possible deadlock|"
                         r"possible irq lock inversion|WARNING: possible (circular|recursive) locking|"
                         r"(HARDIRQ|SOFTIRQ)-safe -> (HARDIRQ|SOFTIRQ)-unsafe lock order detected"),
    ("lockdep-inconsistent", r"inconsistent lock state|inconsistent \{.*\} -> \{.*\} usage"),
    ("lockdep-other", r"suspicious RCU usage|WARNING: bad unlock balance|WARNING: held lock freed|"
                      r"WARNING: lock held when returning|WARNING: nested lock|trying to register non-static key|"
                      r"WARNING: locking bug|DEBUG_LOCKS_WARN_ON|still has locks held|Nested lock was not taken"),
    ("rcu-stall", r"rcu_(sched|preempt|bh)? ?(self-)?detected( expedited)? stall|"
                  r"INFO: rcu_\w+ (self-)?detected|rcu: INFO: rcu_\w+ (self-)?detected|detected stalls on CPU"),
    ("task-hung", r"INFO: task .* blocked (in I/O wait )?for more than|task .* blocked (in I/O wait )?for more than \d+ "
                  r"seconds|INFO: task .* can't die|^\S.* blocked (in I/O wait )?for more than \d+ seconds"),
    ("refcount", r"refcount_t: (underflow|overflow|addition on 0|saturated|decrement hit 0|increment on 0)|"
                 r"refcount_warn_saturate"),
    ("odebug", r"ODEBUG: \w+ (active|not available|destroy|free)"),
    ("warning", r"WARNING: CPU: \d+ PID: \d+ at|WARNING: .* at [\w/.-]+\.[ch]:\d+|WARNING: kernel stack"),
    ("gpf", r"general protection fault(, probably for non-canonical|:\s*[0-9a-f]{4} \[#|\s*$)"),
    ("kernel-bug", r"kernel BUG at"),
    ("double-fault", r"PANIC: double fault"),
    ("divide-error", r"divide error: "),
    ("invalid-opcode", r"invalid opcode: "),
    ("cpu-exception", r"Internal error: |Unhandled fault|Alignment trap|Oops: "),
    ("panic", r"Kernel panic - not syncing|kernel panic|ASSERT FAILED"),
    ("netdev-hang", r"unregister_netdevice: waiting for"),
    ("executor", r"SYZFAIL|SYZFATAL|executor failed|executor \d+ failed"),
    ("rust-panic", r"panicked at |attempt to (add|subtract|multiply|shift \w+) with overflow"),
    ("go-runtime", r"^fatal error: |^panic: |runtime error: "),
    ("info-other", r"^INFO: (Freed|Allocated) in"),
    ("vfs-close", r"^VFS: Close: file count is"),
    ("reboot", r"unexpected kernel reboot|Rebooting in \d+ seconds|reboot: Restarting system"),
    # weak markers: they only count when the log has no other marker, or (cut here) only stand when
    # no marker follows in the next few lines (the line after "cut here" names the real report)
    ("cut-here", r"------------\[ cut here \]"),
    ("bios-reboot", r"SeaBIOS \(version"),
]]
_WEAK = {"cut-here", "bios-reboot"}
_CUT_LOOKAHEAD = 8
# A warning or "kernel BUG at" raised from these files is a more specific report (as syzkaller titles them).
_REFINE_BY_FILE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bat (\./)?kernel/locking/lockdep\.c"), "lockdep-warning"),
    (re.compile(r"\bat (\./)?lib/refcount\.c"), "refcount"),
    (re.compile(r"\bat (\./)?lib/list_debug\.c"), "list-corruption"),
    (re.compile(r"\bat (\./)?mm/usercopy\.c"), "usercopy"),
]

# Frames: "func+0x1a/0x20 [mod]", "func+0x1a/0x20 path/file.c:123", "func (file.c:123)", "#0 ..."
_FRAME = re.compile(
    r"^\s*(?:#\d+\s+)?(?:\[<[0-9a-f]+>\]\s*)?(?P<q>\?\s+)?(?:\[<[0-9a-f]+>\]\s*)?"
    r"(?P<func>[A-Za-z_.$][\w.$]*)\+(?P<off>0x[0-9a-f]+)/(?P<size>0x[0-9a-f]+)"
    r"(?:\s+\[(?P<mod>[\w-]+)\])?(?:\s+(?P<file>[\w./-]+\.[chS]):(?P<line>\d+))?"
)
_FRAME_INLINE = re.compile(r"^\s*(?P<func>[A-Za-z_][\w.]*)\s+(?P<file>[\w./-]+\.[chS]):(?P<line>\d+)\s+\[inline\]")
_RIP = re.compile(r"(?:RIP|PC is at|pc :|EIP|IP): ?(?:\d{4}:)?(?:\[<[0-9a-f]+>\]\s*)?(?P<func>[A-Za-z_][\w.]*)\+(?P<off>0x[0-9a-f]+)/(?P<size>0x[0-9a-f]+)")
_ACCESS = re.compile(r"(?P<kind>Read|Write) of size (?P<size>\d+) at addr (?P<addr>[0-9a-fx]+)", re.I)
_KFENCE_ACCESS = re.compile(r"Invalid (?P<kind>read|write) at 0x(?P<addr>[0-9a-f]+)")
_FAULT_ADDR = re.compile(r"(?:dereference at|for address:?|non-canonical address|paging request at(?: virtual address)?|"
                         r"access at virtual address|in range \[)\s*(?P<addr>0x[0-9a-f]+|[0-9a-f]{8,16})")
_SYMBOL_IN = re.compile(r"\bin (?P<func>[A-Za-z_][\w.]*)(?:\+(?P<off>0x[0-9a-f]+)/0x[0-9a-f]+)?")
_AT_FILE = re.compile(r"\bat (?P<file>[\w./-]+\.[chS]):(?P<line>\d+)")
_TASK = re.compile(r"by task (?P<task>[^/\s]+)/(?P<pid>\d+)|Comm: (?P<comm>\S+)")
_STACK_HEAD = re.compile(r"^(Allocated|Freed|Last potentially related work creation|Second to last)\b.*(by task \d+|stack)?.*:?$")
_HEX = re.compile(r"\b(0x)?[0-9a-f]{6,}\b")
_NUM = re.compile(r"\b\d+\b")

# Frames that report rather than cause a crash (syzkaller skips similar ones for the guilty frame).
_GENERIC = re.compile(
    r"^(dump_stack\w*|show_stack|__dump_stack|panic|__warn\w*|warn_slowpath\w*|report_bug|fixup_bug\w*|"
    r"do_error_trap|do_invalid_op|invalid_op|handle_bug|exc_\w+|asm_exc_\w+|do_trap|die|oops_\w+|"
    r"print_\w+|kasan_\w+|__kasan_\w+|check_memory_region\w*|__asan_\w+|kmsan_\w+|__msan_\w+|"
    r"kcsan_\w+|kfence_\w+|ubsan_\w+|__ubsan_\w+|lock_acquire|lock_release|__lock_acquire|lock_\w+|"
    r"_raw_spin_\w+|_raw_read_\w+|_raw_write_\w+|__raw_spin_\w+|mutex_lock\w*|__mutex_lock\w*|"
    r"down_\w+|up_\w+|__might_sleep|___might_sleep|__might_fault|might_fault|check_\w+|"
    r"mark_lock\w*|validate_chain|print_usage_bug|valid_state|lockdep_\w+|debug_\w+|"
    r"refcount_\w+|__refcount_\w+|memcpy|memset|memmove|strlen|strcpy|strncpy|__memcpy|"
    r"kmalloc\w*|__kmalloc\w*|kfree|kmem_cache_\w+|slab_\w+|__slab_\w+|___slab_\w+|"
    r"rcu_\w+|__rcu_\w+|sched_show_task|watchdog\w*|hung_task\w*|check_hung_\w+|"
    r"entry_SYSCALL\w*|do_syscall_\w+|__do_sys_\w+|__se_sys_\w+|__x64_sys_\w+|__ia32_sys_\w+|"
    r"ret_from_fork\w*|kthread|worker_thread|process_one_work|__schedule|schedule\w*|"
    r"trace_hardirqs_\w+|__sanitizer_\w+|write_comp_data|copy_\w+_user|_copy_\w+_user|"
    r"nmi_\w+|arch_\w+|apic_\w+|smp_\w+|irq_\w+|__irq_\w+|sysvec_\w+|asm_sysvec_\w+|"
    r"__list_\w+_valid\w*|list_\w+|bug_\w+|__bug)$"
)
_GENERIC_FILE = re.compile(r"^(mm/kasan/|mm/kmsan/|mm/kfence/|kernel/locking/|kernel/panic|lib/dump_stack|"
                           r"lib/(string|list_debug|refcount|ubsan)|kernel/rcu/|arch/x86/kernel/(traps|dumpstack)|"
                           r"include/|mm/slab|mm/slub|kernel/kcsan|kernel/sched/)")


@dataclass(frozen=True)
class Frame:
    function: str
    offset: str = ""
    file: str = ""
    line: int = 0
    module: str = ""
    reliable: bool = True


@dataclass
class KernelCrash:
    """What :func:`parse_kernel_log` extracts."""

    marker: str = ""                    # first oops marker found ("" = no crash recognised)
    os: str = ""                        # whose report format it is: linux, freebsd, ..., gvisor ("" = no crash)
    crash_line: str = ""                # the line that starts the report, prefix-stripped
    title: str = ""                     # crash line normalised (addresses/numbers removed)
    next_lines: list[str] = field(default_factory=list)   # a few lines after the crash line
    markers: list[str] = field(default_factory=list)      # every marker seen, in order (deduplicated)
    frames: list[Frame] = field(default_factory=list)
    guilty: Frame | None = None
    guilty_file: str = ""
    symbol: str = ""                    # "func+0xoff" named on the crash line or RIP
    access: dict[str, Any] = field(default_factory=dict)  # kind/size/address
    task: str = ""
    alloc_stack: list[str] = field(default_factory=list)
    free_stack: list[str] = field(default_factory=list)
    corrupted: bool = False             # crash seen but no usable call trace
    n_lines: int = 0

    def params(self) -> dict[str, Any]:
        """The extracted parameters as a flat, JSON-ready dict."""
        out: dict[str, Any] = {
            "symbol": self.symbol, "guilty_function": self.guilty.function if self.guilty else "",
            "guilty_file": self.guilty_file, "task": self.task, **{f"access_{k}": v for k, v in self.access.items()},
        }
        if self.alloc_stack:
            out["alloc_stack"] = self.alloc_stack[:8]
        if self.free_stack:
            out["free_stack"] = self.free_stack[:8]
        return {k: v for k, v in out.items() if v not in ("", None, [])}

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["guilty"] = asdict(self.guilty) if self.guilty else None
        return d


def strip_prefix(line: str) -> tuple[str, str]:
    """Remove console prefixes; return (text, thread tag or '')."""
    line = _ANSI.sub("", line).rstrip("\r")
    m = _PREFIX.match(line)
    if not m:
        return line, ""
    return line[m.end():], (m.group(1) or "")


def normalise(text: str) -> str:
    """Replace addresses and numbers so near-identical lines compare equal."""
    text = re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "", text)
    text = _HEX.sub("ADDR", text)
    return _NUM.sub("NUM", text).strip()


def _match_marker(text: str) -> str:
    for name, rx in OOPS_MARKERS:
        if rx.search(text):
            return name
    return ""


def _frame(text: str) -> Frame | None:
    m = _FRAME.match(text)
    if m:
        return Frame(m["func"], m["off"], m["file"] or "", int(m["line"] or 0), m["mod"] or "", m["q"] is None)
    m = _FRAME_INLINE.match(text)
    if m:
        return Frame(m["func"], "", m["file"], int(m["line"]), "", True)
    return None


def is_generic(frame: Frame) -> bool:
    return bool(_GENERIC.match(frame.function)) or bool(GENERIC_FRAMES.match(frame.function)) or bool(frame.file and _GENERIC_FILE.match(frame.file))


def parse_kernel_log(log: str, max_frames: int = 64) -> KernelCrash:
    """Structured fields of the first crash report in ``log`` (never raises on odd input)."""
    raw = (log or "").splitlines()
    lines = [strip_prefix(x) for x in raw]
    crash = KernelCrash(n_lines=len(lines))
    start, tag, weak = -1, "", -1
    weak_other: Recognised | None = None   # a weak opening of another system (Zircon's boot banner) and its line
    weak_other_at = -1
    for i, (text, t) in enumerate(lines):
        name, os_, other = _match_marker(text), "linux", None
        if not name or (name == "go-runtime" and PANIC.search(text)):
            other = recognise(text.strip(), [x.strip() for x, _ in lines[i + 1:i + 13]])
            if other is not None:
                name, os_ = other.marker, other.os
        if not name:
            continue
        if name not in crash.markers:
            crash.markers.append(name)
        if start >= 0:
            continue
        if name == "cut-here" and weak < 0:
            weak = i
            following = [j for j in range(i + 1, min(len(lines), i + 1 + _CUT_LOOKAHEAD))
                         if (not t or not lines[j][1] or lines[j][1] == t)]
            nxt = next((j for j in following if _match_marker(lines[j][0]) not in ("", *_WEAK)), -1)
            if nxt < 0:   # a bare "cut here" is a warning
                start, tag, crash.marker, crash.crash_line, crash.os = i, t, "warning", text.strip(), "linux"
        elif other is not None and other.weak:
            if weak_other is None:
                weak_other, weak_other_at = other, i
        elif name not in _WEAK:
            start, tag, crash.marker, crash.crash_line, crash.os = i, t, name, text.strip(), os_
        elif weak < 0:
            weak = i
    if start < 0 and weak_other is not None:   # only weak evidence, another system's among it: take that
        text, tag = lines[weak_other_at]
        start, crash.marker, crash.crash_line, crash.os = weak_other_at, weak_other.marker, text.strip(), weak_other.os
    elif start < 0 and weak >= 0:   # only weak evidence: take it (a BIOS banner where another system boots is none)
        text, tag = lines[weak]
        name = _match_marker(text)
        if not (name == "bios-reboot" and other_system_booted(log)):
            start, crash.marker, crash.crash_line = weak, "warning" if name == "cut-here" else name, text.strip()
            crash.os = "linux"
    if start < 0:
        return crash
    if crash.marker in ("warning", "kernel-bug"):
        crash.marker = next((m for rx, m in _REFINE_BY_FILE if rx.search(crash.crash_line)), crash.marker)
    crash.title = normalise(crash.crash_line)
    same = [(txt, t) for txt, t in lines[start + 1:] if not tag or not t or t == tag]
    crash.next_lines = [txt.strip() for txt, _ in same[:6] if txt.strip()]
    section = ""
    for k, (txt, _) in enumerate(same[: 600]):
        s = txt.strip()
        if _STACK_HEAD.match(s):
            section = "alloc" if s.startswith("Allocated") else "free" if s.startswith("Freed") else "other"
            continue
        if not s:
            if section:
                section = ""
            continue
        if not crash.access:
            m = _ACCESS.search(s) or _KFENCE_ACCESS.search(s)
            if m:
                crash.access = {"kind": m["kind"].lower(), "address": m["addr"].removeprefix("0x")}
                if "size" in m.groupdict() and m["size"]:
                    crash.access["size"] = int(m["size"])
        if not crash.task:
            m = _TASK.search(s)
            if m:
                crash.task = m["task"] or m["comm"] or ""
        if not crash.symbol:
            m = _RIP.search(s)
            if m:
                crash.symbol = f"{m['func']}+{m['off']}"
        fr = _frame(s)
        if fr is None and crash.os != "linux":
            other = frame_of(s, same[k + 1][0] if k + 1 < len(same) else "")
            fr = Frame(other[0], "", other[1], other[2]) if other else None
        if fr is None:
            continue
        if section == "alloc":
            crash.alloc_stack.append(fr.function)
        elif section == "free":
            crash.free_stack.append(fr.function)
        elif section == "" and len(crash.frames) < max_frames:
            crash.frames.append(fr)
    if not crash.access:
        m = _FAULT_ADDR.search(crash.crash_line + " " + " ".join(crash.next_lines[:2]))
        if m:
            crash.access = {"kind": "fault", "address": m["addr"].removeprefix("0x")}
    m = _SYMBOL_IN.search(crash.crash_line)
    if m and m["off"]:
        crash.symbol = f"{m['func']}+{m['off']}"
    crash.guilty = _guilty(crash)
    crash.guilty_file = _guilty_file(crash)
    crash.corrupted = not any(f.reliable for f in crash.frames)
    return crash


def _guilty(crash: KernelCrash) -> Frame | None:
    for f in crash.frames:
        if f.reliable and not is_generic(f):
            return f
    if crash.symbol:
        return Frame(crash.symbol.split("+")[0], crash.symbol.partition("+")[2])
    m = _SYMBOL_IN.search(crash.crash_line)
    return Frame(m["func"]) if m else None


_CORE_FILE = re.compile(r"(^(mm|kernel|lib|arch|include|init|block/blk-core)/|\.h$)")


def _clean_path(path: str) -> str:
    parts: list[str] = []
    for p in path.removeprefix("./").split("/"):
        if p == "..":
            if parts:
                parts.pop()
        elif p not in ("", "."):
            parts.append(p)
    return "/".join(parts)


def _guilty_file(crash: KernelCrash) -> str:
    files = [_clean_path(f.file) for f in crash.frames if f.reliable and f.file and not is_generic(f)]
    for f in files:
        if not _CORE_FILE.search(f):
            return f
    if files:
        return files[0]
    m = _AT_FILE.search(crash.crash_line)
    if m and not _GENERIC_FILE.match(m["file"]):
        return m["file"]
    m = re.search(r"\s([\w-]+/[\w./-]+\.[ch]):\d+", crash.crash_line)
    return m.group(1) if m else ""
