import polars as pl
import pytest
from kforge.commits.tags import tag_commits


def _tags(subject: str, body: str = "") -> set[str]:
    df = pl.DataFrame({"repo": ["r"], "sha": ["s"], "subject": [subject], "body": [body]})
    return set(tag_commits(df)["tag"].to_list())


@pytest.mark.parametrize(("subject", "body", "tag"), [
    ("net: fix use-after-free in skb", "", "security"),
    ("mm: handle a corner case", "BUG: KASAN: slab-out-of-bounds in foo", "security"),
    ("x: y", "Reported-by: syzbot+1@syzkaller.appspotmail.com", "security"),
    ("x: harden parser", "This is CVE-2023-1234.", "security"),
    ("net: fix a leak", "", "bugfix"),
    ("x: y", "Fixes: 0123456789ab (\"x\")", "bugfix"),
    ('Revert "x: y"', "", "revert"),
    ("x: y", "Cc: stable@vger.kernel.org", "backport"),
    ("docs: describe foo", "", "docs"),
    ("x: clean up helpers", "", "refactor"),
    ("sched: speed up wakeups", "", "performance"),
])
def test_rules_fire(subject: str, body: str, tag: str) -> None:
    assert tag in _tags(subject, body)


@pytest.mark.parametrize("subject", [
    "locking: add lockdep annotations",           # 'lock' is not security
    "mm: report memory leak statistics in sysfs",  # 'leak' alone is not security
    "lib: handle counter overflow in stats",       # plain 'overflow' is not a memory-safety bug
    "net: add prefix length option",               # 'prefix' is not 'fix'
    "build: use suffix rules",
])
def test_no_false_security_or_bugfix(subject: str) -> None:
    tags = _tags(subject)
    assert "security" not in tags
    assert "bugfix" not in tags


def test_refactor_that_fixes_is_a_bugfix() -> None:
    assert _tags("x: clean up and fix error path") & {"bugfix", "refactor"} == {"bugfix"}
