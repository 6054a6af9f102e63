"""Report shapes syzkaller's parsers for FreeBSD, NetBSD, OpenBSD, Fuchsia, gVisor and Darwin recognise
(``pkg/report/<os>.go``: an oops is any console line *containing* its header, minus its suppressions) and that
kforge missed, misnamed or wrongly called a crash before session 8. Every log here is written for this test from
the format strings those systems print; none comes from syzkaller's test data.

The class asserted is the one a labeller reading only syzkaller's title would give (see
docs/notes/issue-16-healing-other-kernels-session8.md for the mapping and its ambiguities)."""

import pytest
from kforge.healing.kernel_log import parse_kernel_log
from kforge.healing.rules import RuleEngine, match_texts

BOOT = "Starting syslogd.\nsyzkaller login: \nExecuting program 0:\nr0 = socket(0x1c, 0x1, 0x84)\n"
FREEBSD_TAIL = "cpuid = 0\ntime = 1700000000\nKDB: stack backtrace:\nvpanic() at vpanic+0x17f/frame 0xfffffe0000aa0000\n"

# FreeBSD: the header may sit mid-line (console output of two writers interleaved, or a truncated trap line).
FREEBSD_TRAP_MIDLINE = BOOT + "executing program 1Fatal trap 12: page fault while in kernel mode\n" \
    "cpuid = 1; apic id = 01\nfault virtual address\t= 0x28\n" + FREEBSD_TAIL
FREEBSD_TRAP_TRUNCATED = BOOT + "Fatal trap 9: general protection fault whi\n" + FREEBSD_TAIL
FREEBSD_PANIC_MIDLINE = BOOT + "executing program 0panic: vm_fault_lookup: fault on nofault entry, addr: 0x0\n" + FREEBSD_TAIL
# FreeBSD's witness only warns on a lock order reversal (syzkaller's FreeBSD parser has no such header):
# the report is the panic that follows.
FREEBSD_LOR = BOOT + """lock order reversal:
 1st 0xfffff80003c4e2e8 so_rcv (so_rcv, sx) @ /usr/src/sys/kern/uipc_socket.c:2101
 2nd 0xfffff80012a3b0c0 tcp inp (tcp inp, rw) @ /usr/src/sys/netinet/tcp_usrreq.c:812
lock order so_rcv -> tcp inp established at:
#0 0xffffffff80c0d9c1 at witness_checkorder+0x461
stack backtrace:
#0 0xffffffff80c0d9c1 at witness_debugger+0x71
"""
FREEBSD_LOR_THEN_PANIC = FREEBSD_LOR + "panic: Assertion so->so_count > 0 failed at /usr/src/sys/kern/uipc_socket.c:1204\n" \
    + FREEBSD_TAIL
# NetBSD: every "fatal <trap> in supervisor mode" is a report, not only page/protection/divide faults.
NETBSD_SEGMENT = BOOT + """[  61.2345678] fatal segment not present fault in supervisor mode
[  61.2345678] trap type 11 code 0x2a rip 0xffffffff80a12345 cs 0x8 rflags 0x10246 cr2 0 ilevel 0 rsp 0xffff
Stopped in pid 812.1 (syz-executor0) at netbsd:sys_ioctl+0x45:       movq    0(%rax),%rdx
"""
# OpenBSD: "kernel: <trap> trap, code=N" for every trap kind, witness messages prefixed "witness: ", and the
# KASAN report "Caught invalid memory access".
OPENBSD_PROTECTION = BOOT + """kernel: protection fault trap, code=0
Stopped at      sosend+0x2a:       movq    0x8(%rax),%rcx
ddb{0}> set $lines = 0
"""
OPENBSD_DIVIDE = BOOT + "kernel: integer divide fault trap, code=0\nStopped at      tcp_mss+0x8f:   idivl   %ecx\nddb{1}>\n"
OPENBSD_LOR = BOOT + """witness: lock order reversal:
 1st 0xfffffd8008e4b2a8 vmmaplk (&map->lock)
 2nd 0xffffff0001b5e0d8 inode (&ip->i_lock)
lock order "&ip->i_lock"(rrwlock) -> "&map->lock"(rwlock) first seen at:
#0  witness_checkorder+0x41b
"""
# OpenBSD titles both "Data modified on freelist" (malloc) and "free list modified" (pool) as "...: free list modified".
OPENBSD_MALLOC_FREELIST = BOOT + "panic: Data modified on freelist: word 3 of object 0xffff800012345600 size 0x40 " \
    "previous type mbuf (0xdead4110 != 0xdeafbead)\nStopped at      db_enter+0x10:  popq    %rbp\nddb{0}>\n"
OPENBSD_KASAN = BOOT + """kasan: Caught invalid memory access at 0xffff800023ab1040 (size 8, read)
panic: kasan_shadow_check
Stopped at      db_enter+0x10:  popq    %rbp
ddb{0}> trace
db_enter() at db_enter+0x10
panic(ffffffff81e0a1c8) at panic+0x12a
__asan_load8_noabort(ffff800023ab1040) at __asan_load8_noabort+0x2b
pipe_read(fffffd8012345678) at pipe_read+0x3c1
"""
# Fuchsia: Starnix's kernel panics, KVM internal errors and an unexpected reboot ("welcome to Zircon").
FUCHSIA_STARNIX = BOOT + """[00131.234][1234][1256][starnix] STARNIX KERNEL PANIC
[00131.234][1234][1256][starnix] info=panicked at ../../src/starnix/kernel/mm/memory_manager.rs:812:9:
[00131.234][1234][1256][starnix] called `Option::unwrap()` on a `None` value
"""
FUCHSIA_KVM = BOOT + "KVM internal error. Suberror: 1\nemulation failure\nRAX=0000000000000000 RBX=0000000000000000\n"
# QEMU's error may follow another report: the report stands (the error is weak evidence, as the Zircon banner).
KVM_AFTER_TRAP = BOOT + "Fatal trap 12: page fault while in kernel mode\n" + FREEBSD_TAIL + FUCHSIA_KVM
FUCHSIA_REBOOT = BOOT + "[00000.100] 00000.00000> welcome to Zircon\n[00000.200] 00000.00000> dso: id=1 base=0x0\n"
FUCHSIA_REBOOT_THEN_PANIC = FUCHSIA_REBOOT + "ZIRCON KERNEL PANIC\n\nUPTIME: 9ms, CPU: 0\ndouble fault, halting\n"
SEABIOS = "SeaBIOS (version 1.8.2-google)\nTotal RAM Size = 0x00000001e0000000 = 7680 MiB\nBooting from Hard Disk 0...\n"
FUCHSIA_BIOS_REBOOT = SEABIOS + FUCHSIA_REBOOT
# A BSD VM booting prints the BIOS banner too: that is no unexpected reboot of Linux.
FREEBSD_BOOT = SEABIOS + "Copyright (c) 1992-2023 The FreeBSD Project.\nFreeBSD 14.0-CURRENT #0: Mon Jan  1 00:00:00 UTC 2024\n" + BOOT
# gVisor: the sentry's own fatal lines, with or without a log prefix.
GVISOR_FATAL = BOOT + "FATAL ERROR: failed to create sandbox: cannot allocate stack\ngoroutine 1 [running]:\n"
GVISOR_BUG_ON = BOOT + "WARNING: BUG on /syz-executor: task 12 exited with locks held\ngoroutine 33 [running]:\n"
GVISOR_PARTIAL = BOOT + "Invalid request partialResult 4096 for read operation\ngoroutine 57 [running]:\n"
GVISOR_PANIC_PREFIXED = BOOT + "W1206 04:00:00.123456       1 task_exit.go:312] Panic: sentry task exited twice\n" \
    "goroutine 412 [running]:\ngvisor.dev/gvisor/pkg/sentry/kernel.(*Task).exit(0xc000a1b2c0)\n"
# Darwin: the paniclog header mid-line.
DARWIN_MIDLINE = BOOT + "executing program 0panic(cpu 1 caller 0xffffff80012a3b4c): Kernel trap at 0xffffff8001a2b3c4, " \
    "type 14=page fault, registers:\nCR0: 0x000000008001003b, CR2: 0x0000000000000018\n"

# (log, system, marker, crash class)
SHAPES = [
    (FREEBSD_TRAP_MIDLINE, "freebsd", "page-fault", "null-ptr-deref-or-page-fault"),
    (FREEBSD_TRAP_TRUNCATED, "freebsd", "gpf", "general-protection-fault"),
    (FREEBSD_PANIC_MIDLINE, "freebsd", "panic", "panic"),
    (FREEBSD_LOR_THEN_PANIC, "freebsd", "panic", "panic"),
    (NETBSD_SEGMENT, "netbsd", "cpu-exception", "cpu-exception"),
    (OPENBSD_PROTECTION, "openbsd", "gpf", "general-protection-fault"),
    (OPENBSD_DIVIDE, "openbsd", "divide-error", "cpu-exception"),
    (OPENBSD_LOR, "openbsd", "lockdep-deadlock", "lockdep-or-locking"),
    (OPENBSD_KASAN, "openbsd", "kasan", "kasan-other"),
    (OPENBSD_MALLOC_FREELIST, "openbsd", "kasan-uaf", "kasan-use-after-free"),
    (FUCHSIA_STARNIX, "fuchsia", "panic", "panic"),
    (FUCHSIA_KVM, "fuchsia", "panic", "panic"),
    (FUCHSIA_REBOOT, "fuchsia", "reboot", "lost-connection-or-no-output"),
    (KVM_AFTER_TRAP, "freebsd", "page-fault", "null-ptr-deref-or-page-fault"),
    (FUCHSIA_REBOOT_THEN_PANIC, "fuchsia", "double-fault", "cpu-exception"),
    (FUCHSIA_BIOS_REBOOT, "fuchsia", "reboot", "lost-connection-or-no-output"),
    (GVISOR_FATAL, "gvisor", "go-runtime", "host-fatal-error"),
    (GVISOR_BUG_ON, "gvisor", "warning", "warning"),
    (GVISOR_PARTIAL, "gvisor", "panic", "panic"),
    (GVISOR_PANIC_PREFIXED, "gvisor", "panic", "panic"),
    (DARWIN_MIDLINE, "darwin", "page-fault", "null-ptr-deref-or-page-fault"),
]


def _rule_class(log: str, crash: object) -> str | None:
    m = RuleEngine.default().match_text("kernel", match_texts("kernel", log, crash))
    return m.rule.labels.get("crash_class") if m else None


@pytest.mark.parametrize("log, system, marker, crash_class", SHAPES)
def test_syzkaller_shape_is_recognised_with_its_class(log: str, system: str, marker: str, crash_class: str) -> None:
    crash = parse_kernel_log(log)
    assert (crash.os, crash.marker) == (system, marker)
    assert _rule_class(log, crash) == crash_class


def test_freebsd_lock_order_reversal_does_not_hide_the_panic() -> None:
    crash = parse_kernel_log(FREEBSD_LOR_THEN_PANIC)
    assert crash.crash_line.startswith("panic: Assertion so->so_count > 0 failed")


@pytest.mark.parametrize("log", [
    FREEBSD_LOR,                                                                  # a witness warning, no report
    FREEBSD_BOOT,                                                                 # the VM's BIOS, then FreeBSD boots
    BOOT + "[00012.345] 01234.01256> <== fatal exception: process /tmp/syz-executor[1234] thread main[1256]\n",
    BOOT + "[00012.345] 01234.01256> <== fatal exception: process /system/bin/syz-executor.3[4321] thread t[4322]\n",
])
def test_suppressed_lines_stay_no_crash(log: str) -> None:
    crash = parse_kernel_log(log)
    assert crash.marker == "" and crash.os == ""
    assert _rule_class(log, crash) == "no-crash"


@pytest.mark.parametrize("log", [
    BOOT + "sysctl: ddb.onpanic: 1 -> 0\n",                                      # NetBSD/OpenBSD sysctl output
    BOOT + "reorder_kernel: kernel relinking done\n",                            # OpenBSD boot
    BOOT + "ddb.panic: 1 -> 0\n",                                                # OpenBSD sysctl output
    BOOT + "event_init: unable to initialize: panic: no event mechanism\n",      # postfix on NetBSD
    BOOT + "    at std::panic::catch_unwind::h0123456789abcdef\n",                   # a Rust path on Fuchsia
    BOOT + "xlog_status: panic: 0\n",                                            # Android boot
])
def test_lines_that_only_look_like_headers_stay_no_crash(log: str) -> None:
    crash = parse_kernel_log(log)
    assert crash.marker == "" and crash.os == ""
