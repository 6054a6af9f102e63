import pytest
from kforge.healing.kernel_log import parse_kernel_log
from kforge.healing.traceback import parse_traceback

KASAN = """[  100.1][ T2148] audit: type=1400 audit(1.2:3): avc: denied
[  100.2][ T2148] ==================================================================
[  100.3][ T2148] BUG: KASAN: use-after-free in ip6_send_skb+0x2f5/0x330 net/ipv6/ip6_output.c:1748
[  100.4][ T2148] Read of size 8 at addr ffff88004fab1858 by task syz-executor0/30168
[  100.5][   T36] audit: interleaved line from another thread
[  100.6][ T2148] Call Trace:
[  100.7][ T2148]  __dump_stack lib/dump_stack.c:16 [inline]
[  100.8][ T2148]  dump_stack+0x292/0x395 lib/dump_stack.c:52
[  100.9][ T2148]  kasan_report+0x22f/0x340 mm/kasan/report.c:409
[  101.0][ T2148]  ip6_send_skb+0x2f5/0x330 net/ipv6/ip6_output.c:1748
[  101.1][ T2148]  ? rawv6_sendmsg+0x10/0x20
[  101.2][ T2148]  udp_v6_send_skb+0x10/0x30 net/ipv6/udp.c:1000
[  101.3][ T2148]
[  101.4][ T2148] Allocated by task 30168:
[  101.5][ T2148]  kmem_cache_alloc+0x10/0x20 mm/slab.c:10
[  101.6][ T2148]  sk_alloc+0x10/0x20 net/core/sock.c:1
[  101.7][ T2148]
[  101.8][ T2148] Freed by task 30170:
[  101.9][ T2148]  kfree+0x10/0x20 mm/slab.c:20
"""


def test_kernel_log_fields():
    c = parse_kernel_log(KASAN)
    assert c.marker == "kasan-uaf"
    assert c.crash_line.startswith("BUG: KASAN: use-after-free in ip6_send_skb")
    assert c.guilty is not None and c.guilty.function == "ip6_send_skb"
    assert c.guilty_file == "net/ipv6/ip6_output.c"
    assert c.access == {"kind": "read", "address": "ffff88004fab1858", "size": 8}
    assert c.symbol == "ip6_send_skb+0x2f5"
    assert c.alloc_stack == ["kmem_cache_alloc", "sk_alloc"] and c.free_stack == ["kfree"]
    assert all(f.function != "rawv6_sendmsg" or not f.reliable for f in c.frames)
    assert "title" not in c.params() and c.params()["access_kind"] == "read"


def test_kernel_log_no_crash_and_garbage():
    assert parse_kernel_log("Booting the kernel.\nsyzkaller login:").marker == ""
    assert parse_kernel_log("").marker == ""
    c = parse_kernel_log("\x00\xff garbage\n** 12 printk messages dropped ** [ 1.0] INFO: task hung blocked for more than 143 seconds.")
    assert c.marker == "task-hung"


@pytest.mark.parametrize("log, marker", [
    # "cut here" only announces a report: the next marker line names it
    ("[ 1.0] ------------[ cut here ]------------\n[ 1.1] kernel BUG at net/core/skbuff.c:108!\n"
     "[ 1.2] invalid opcode: 0000 [#1] SMP KASAN\n", "kernel-bug"),
    ("------------[ cut here ]------------\nrefcount_t: underflow; use-after-free.\n"
     "WARNING: CPU: 0 PID: 4270 at lib/refcount.c:28 refcount_warn_saturate+0x1d1/0x1e0\n", "refcount"),
    ("------------[ cut here ]------------\nModules linked in:\n", "warning"),
    # a warning or kernel BUG raised from a checker's own file is that checker's report
    ("WARNING: CPU: 0 PID: 25919 at kernel/locking/lockdep.c:704 register_lock_class+0xce6/0x2650\n", "lockdep-warning"),
    ("------------[ cut here ]------------\nkernel BUG at lib/list_debug.c:51!\n", "list-corruption"),
    ("WARNING: CPU: 1 PID: 6747 at mm/usercopy.c:81 usercopy_warn+0xdb/0x100\n", "usercopy"),
    ("WARNING: CPU: 1 PID: 6747 at net/core/dev.c:81 foo+0xdb/0x100\n", "warning"),
    # old lockdep banners and a task name broken over two lines
    ("[ 1.0] [ INFO: possible recursive locking detected ]\n", "lockdep-deadlock"),
    ("[ 1.0] WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected\n", "lockdep-deadlock"),
    ("[ 1.0] [ BUG: bad unlock balance detected! ]\n", "lockdep-other"),
    ("[ 9.0][ T41] INFO: task \n[ 9.0][ T41] xyz:18088 blocked for more than 143 seconds.\n", "task-hung"),
    ("[ 9.0][ T31] INFO: task udevd:5612 blocked in I/O wait for more than 143 seconds.\n", "task-hung"),
    # weak evidence counts only when nothing else does
    ("SeaBIOS (version 1.8.2)\nBooting the kernel.\n", "bios-reboot"),
    ("SeaBIOS (version 1.8.2)\n[ 5.0] BUG: KASAN: use-after-free in foo+0x1/0x2\n", "kasan-uaf"),
])
def test_kernel_report_markers(log, marker):
    assert parse_kernel_log(log).marker == marker


def test_python_traceback_plain_and_chained():
    tb = '''Traceback (most recent call last):
  File "prog.py", line 4, in <module>
    total += row["Price"] * row["qty"]
KeyError: 'Price'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/usr/lib/python3.11/site-packages/pandas/core/frame.py", line 10, in get
    raise AttributeError("x")
  File "prog.py", line 9, in <module>
    df.lowercase()
AttributeError: 'DataFrame' object has no attribute 'lowercase'
'''
    e = parse_traceback(tb)
    assert e.exc_type == "AttributeError" and e.chained == ["KeyError"]
    p = e.params()
    assert p["object_type"] == "DataFrame" and p["attribute"] == "lowercase"
    assert p["file"] == "prog.py" and p["line"] == 9 and p["libraries"] == ["pandas"]


def test_ipython_traceback_truncated_uses_header():
    tb = ("-----\nNameError                                 Traceback (most recent call last)\n"
          "<ipython-input-12-17a0> in <module>\n----> 1 x_test\n")
    e = parse_traceback(tb)
    assert e.exc_type == "NameError" and e.truncated
    assert e.frames[0].code == "x_test"
    tb2 = tb + "\nNameError: name 'x_test' is not defined"
    assert parse_traceback(tb2).params()["name"] == "x_test"
