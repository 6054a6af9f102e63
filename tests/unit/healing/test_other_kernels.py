"""Crash reports of other kernels (FreeBSD, NetBSD, OpenBSD, Fuchsia, gVisor, Darwin) are recognised as crashes of
the right class; ``no-crash`` only where a log holds no report. The logs are written here in those systems' console
formats (none is taken from syzkaller's test data)."""

import pytest
from kforge.healing.kernel_log import parse_kernel_log
from kforge.healing.rules import RuleEngine, match_texts

BOOT = "Starting syslogd.\nsyzkaller login: \nExecuting program 0:\nr0 = socket(0x1c, 0x1, 0x84)\n"

FREEBSD_PAGE_FAULT = BOOT + """
Fatal trap 12: page fault while in kernel mode
cpuid = 1; apic id = 01
fault virtual address	= 0x28
fault code		= supervisor read data, page not present
instruction pointer	= 0x20:0xffffffff80c1a2b3
current process		= 812 (syz-executor.0)
trap number		= 12
panic: page fault
cpuid = 1
time = 1700000000
KDB: stack backtrace:
db_trace_self_wrapper() at db_trace_self_wrapper+0x2b/frame 0xfffffe0012345670
vpanic() at vpanic+0x17f/frame 0xfffffe00123456c0
panic() at panic+0x43/frame 0xfffffe0012345720
trap_fatal() at trap_fatal+0x391/frame 0xfffffe0012345780
trap_pfault() at trap_pfault+0x4f/frame 0xfffffe00123457d0
calltrap() at calltrap+0x8/frame 0xfffffe00123457d0
--- trap 0xc, rip = 0xffffffff80c1a2b3, rsp = 0xfffffe00123458a0, rbp = 0xfffffe00123458c0 ---
sctp_sendm() at sctp_sendm+0x93/frame 0xfffffe00123458c0
sosend_generic() at sosend_generic+0x5e1/frame 0xfffffe0012345970
"""
FREEBSD_GPF = BOOT + "Fatal trap 9: general protection fault while in kernel mode\ncpuid = 0; apic id = 00\n"
FREEBSD_DIVIDE = BOOT + "Fatal trap 18: integer divide fault while in kernel mode\ncpuid = 0; apic id = 00\n"
FREEBSD_ASSERT = BOOT + """panic: Assertion m->m_len > 0 failed at /usr/src/sys/kern/uipc_mbuf.c:812
cpuid = 0
time = 1700000001
KDB: stack backtrace:
vpanic() at vpanic+0x17f/frame 0xfffffe0000aa0000
m_copydata() at m_copydata+0x12/frame 0xfffffe0000aa0100
"""
FREEBSD_ASAN = BOOT + """panic: ASan: Invalid access, 8-byte read at 0xfffffe0023ab1040, UMAUseAfterFree(fd)
cpuid = 1
KDB: stack backtrace:
kasan_code_name() at kasan_code_name+0x1/frame 0xfffffe0000bb0000
"""
FREEBSD_ASAN_REDZONE = BOOT + "panic: ASan: Invalid access, 4-byte write at 0xfffffe0023ab1040, MallocRedZone(fb)\ncpuid = 1\n"
FREEBSD_MSAN = BOOT + "panic: MSan: Uninitialized UMA memory from m_getm2+0x1c3\ncpuid = 0\nKDB: stack backtrace:\n"
FREEBSD_WITNESS = BOOT + """lock order reversal:
 1st 0xfffff80003c4e2e8 so_rcv (so_rcv, sx) @ /usr/src/sys/kern/uipc_socket.c:2101
 2nd 0xfffff80012a3b0c0 tcp inp (tcp inp, rw) @ /usr/src/sys/netinet/tcp_usrreq.c:812
stack backtrace:
"""
FREEBSD_DESTROYED = BOOT + "panic: __mtx_lock_flags() of destroyed mutex @ /usr/src/sys/net/if.c:1234\ncpuid = 0\n"
NETBSD_FAULT = BOOT + """[  88.1234567] fatal page fault in supervisor mode
[  88.1234567] trap type 6 code 0 rip 0xffffffff80a12345 cs 0x8 rflags 0x10246 cr2 0x10 ilevel 0 rsp 0xffff
[  88.1234567] curlwp 0xffffd1c0d3a2c000 pid 812.1 lowest kstack 0xffffb3810a1c02c0
kernel: page fault trap, code=0
Stopped in pid 812.1 (syz-executor0) at netbsd:m_copym+0x45:       movq    0(%rax),%rdx
"""
NETBSD_ASSERT = BOOT + """[  12.3456789] panic: kernel diagnostic assertion "so->so_lock != NULL" failed: file "/usr/src/sys/kern/uipc_socket.c", line 812
[  12.3456789] cpu0: Begin traceback...
[  12.3456789] vpanic() at netbsd:vpanic+0x18e
"""
NETBSD_ASAN = BOOT + """ASan: Unauthorized Access In 0xffffffff80a1b2c3: Addr 0xffff9f00a1b2c3d0 [8 bytes, read, PoolUseAfterFree]
#0 0xffffffff80a1b2c3 in kasan_report <netbsd>
"""
NETBSD_UBSAN = BOOT + "UBSan: Undefined Behavior in /usr/src/sys/net/if.c:812:5, signed integer overflow: 2147483647 + 1\n"
NETBSD_LOCK = BOOT + "[ 5.1] panic: lock error: Mutex: mutex_vector_enter,512: locking against myself: lock 0xffff\n[ 5.1] cpu0: Begin traceback...\n"
OPENBSD_UVM = BOOT + """uvm_fault(0xffffffff81f0a1c8, 0x8, 0, 1) -> e
kernel: page fault trap, code=0
Stopped at      pf_state_key_detach+0x2a:       movq    0x8(%rax),%rcx
ddb{0}> set $lines = 0
"""
OPENBSD_POOL = BOOT + "panic: pool_do_put: mbufpl: double pool_put: 0xfffffd80a1b2c300\nStopped at      db_enter+0x10:  popq    %rbp\nddb{1}>\n"
OPENBSD_WITNESS = BOOT + "witness: thread 0xffff8000ffffa000 exiting with the following locks held:\nddb{0}>\n"
FUCHSIA_ASSERT = BOOT + """ZIRCON KERNEL PANIC

UPTIME: 123456ms, CPU: 0
ASSERT FAILED at (../../zircon/kernel/object/port_dispatcher.cc:212): !port->is_closed()
bt#00: 0x0000000000123456 PortDispatcher::Queue ../../zircon/kernel/object/port_dispatcher.cc:212
bt#01: 0x0000000000123789 sys_port_queue ../../zircon/kernel/syscalls/port.cc:88
Halted
"""
FUCHSIA_PAGE_FAULT = BOOT + """ZIRCON KERNEL PANIC

UPTIME: 55555ms, CPU: 1
Supervisor Page Fault exception, halting
 CS:  0x8 RIP: 0xffffffff0012a3b4 EFL: 0x10246 CR2: 0x18
bt#00: 0x000000000012a3b4 VmObject::Lookup ../../zircon/kernel/vm/vm_object.cc:401
"""
FUCHSIA_DOUBLE_FAULT = BOOT + "ZIRCON KERNEL PANIC\n\nUPTIME: 9ms, CPU: 0\ndouble fault, halting\n"
FUCHSIA_EXCEPTION = BOOT + "[00012.345] 01234.01256> <== fatal exception: process /boot/bin/netstack[1234] thread main[1256]\n"
GVISOR_NIL = BOOT + """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0xa1b2c3]

goroutine 412 [running]:
gvisor.dev/gvisor/pkg/sentry/socket/netstack.(*SocketOperations).Ioctl(0xc000a1b2c0, 0x1)
	/gvisor/pkg/sentry/socket/netstack/netstack.go:812 +0x1a3
"""
GVISOR_PANIC = BOOT + """panic: WARNING: circular locking detected: mm.mappingMutex -> mm.activeMutex:

goroutine 77 [running]:
gvisor.dev/gvisor/pkg/sync/locking.AddGLock(0x1, 0x2)
	/gvisor/pkg/sync/locking/lockdep.go:120 +0x55
"""
GVISOR_RACE = BOOT + """==================
WARNING: DATA RACE
Write at 0x00c000a1b2c0 by goroutine 91:
  gvisor.dev/gvisor/pkg/tcpip/stack.(*Route).Release()
      /gvisor/pkg/tcpip/stack/route.go:412 +0x84
"""
DARWIN_TRAP = BOOT + """panic(cpu 1 caller 0xffffff80012a3b4c): Kernel trap at 0xffffff8001a2b3c4, type 14=page fault, registers:
CR0: 0x000000008001003b, CR2: 0x0000000000000018, CR3: 0x000000000a1b2000, CR4: 0x00000000003606e0
Backtrace (CPU 1), Frame : Return Address
"""
DARWIN_ASSERT = BOOT + 'panic(cpu 0 caller 0xffffff8001234567): assertion failed: so->so_usecount > 0, file: bsd/kern/uipc_socket.c, line: 812\n'
DARWIN_GPF = BOOT + "panic(cpu 0 caller 0xffffff8001234567): Kernel trap at 0xffffff8001a2b3c4, type 13=general protection, registers:\n"

CASES = [
    (FREEBSD_PAGE_FAULT, "freebsd", "null-ptr-deref-or-page-fault"),
    (FREEBSD_GPF, "freebsd", "general-protection-fault"),
    (FREEBSD_DIVIDE, "freebsd", "cpu-exception"),
    (FREEBSD_ASSERT, "freebsd", "panic"),
    # syzkaller titles these "panic: ASan: Invalid access, N-byte read in f": the kind of access is not in the title
    (FREEBSD_ASAN, "freebsd", "kasan-other"),
    (FREEBSD_ASAN_REDZONE, "freebsd", "kasan-other"),
    (FREEBSD_MSAN, "freebsd", "kmsan-uninit-value"),
    (FREEBSD_DESTROYED, "freebsd", "lockdep-or-locking"),
    (NETBSD_FAULT, "netbsd", "null-ptr-deref-or-page-fault"),
    (NETBSD_ASSERT, "netbsd", "panic"),
    (NETBSD_ASAN, "netbsd", "kasan-other"),   # titled "ASan: Unauthorized Access in f"
    (NETBSD_UBSAN, "netbsd", "ubsan"),
    (NETBSD_LOCK, "netbsd", "lockdep-or-locking"),
    (OPENBSD_UVM, "openbsd", "null-ptr-deref-or-page-fault"),
    (OPENBSD_POOL, "openbsd", "kasan-invalid-free"),
    (OPENBSD_WITNESS, "openbsd", "lockdep-or-locking"),
    (FUCHSIA_ASSERT, "fuchsia", "panic"),
    (FUCHSIA_PAGE_FAULT, "fuchsia", "null-ptr-deref-or-page-fault"),
    (FUCHSIA_DOUBLE_FAULT, "fuchsia", "cpu-exception"),
    (FUCHSIA_EXCEPTION, "fuchsia", "cpu-exception"),
    (GVISOR_NIL, "gvisor", "null-ptr-deref-or-page-fault"),
    (GVISOR_PANIC, "gvisor", "lockdep-or-locking"),
    (GVISOR_RACE, "gvisor", "kcsan-data-race"),
    (DARWIN_TRAP, "darwin", "null-ptr-deref-or-page-fault"),
    (DARWIN_ASSERT, "darwin", "panic"),
    (DARWIN_GPF, "darwin", "general-protection-fault"),
]


@pytest.mark.parametrize("log, system, crash_class", CASES)
def test_other_kernels_reports_get_their_class(log: str, system: str, crash_class: str) -> None:
    crash = parse_kernel_log(log)
    assert crash.marker, "a crash report must be recognised"
    assert crash.os == system
    m = RuleEngine.default().match_text("kernel", match_texts("kernel", log, crash))
    assert m is not None and m.rule.labels["crash_class"] == crash_class


def test_bsd_stack_names_the_guilty_frame() -> None:
    crash = parse_kernel_log(FREEBSD_PAGE_FAULT)
    assert crash.crash_line.startswith("Fatal trap 12: page fault")
    assert crash.guilty is not None and crash.guilty.function == "sctp_sendm"
    go = parse_kernel_log(GVISOR_NIL)
    assert go.guilty is not None and go.guilty.function == "(*SocketOperations).Ioctl"
    assert go.frames[0].file.endswith("netstack.go")


@pytest.mark.parametrize("log", [
    BOOT,
    BOOT + "FreeBSD 14.0-CURRENT #0: Mon Jan  1 00:00:00 UTC 2024\nCopyright (c) 1992-2023 The FreeBSD Project.\n",
    BOOT + "cpu0: Begin traceback... is only a string in a program\nskb_panic: is a kernel function name\n",
    FREEBSD_WITNESS,   # FreeBSD's witness warns; syzkaller's FreeBSD parser has no report for it
    BOOT + "[00000.100] 00000.00000> dso: id=1 base=0x0\n[00000.200] 00000.00000> UPTIME: 12ms\n",
])
def test_no_crash_only_without_a_report(log: str) -> None:
    crash = parse_kernel_log(log)
    assert crash.marker == "" and crash.os == ""
    m = RuleEngine.default().match_text("kernel", match_texts("kernel", log, crash))
    assert m is not None and m.rule.labels["crash_class"] == "no-crash"
