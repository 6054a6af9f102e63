import json

import pytest
from kforge.errors import InputError
from kforge.healing.rules import RuleEngine, load_homeostasis, load_rules


def test_default_rules_load_and_match_both_kinds():
    eng = RuleEngine.default()
    assert {r.kind for r in eng.rules} >= {"kernel", "python"}
    m = eng.match_row({"id": 1, "traceback": "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyError: 'price'"})
    assert m.rule.id == "py-keyerror" and m.params == {"key": "price"}
    m = eng.match_row({"id": 2, "log": "[ 1.0] BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2\n[ 1.1] Write of size 4 at addr ffff"})
    assert m.rule.labels["crash_class"] == "kasan-out-of-bounds" and m.rule.id == "kasan-oob-write"
    m = eng.match_row({"id": 3, "log": "just booting"})
    assert m.rule.id == "no-crash" and m.rule.labels["crash_class"] == "no-crash"
    assert eng.match_row({"id": 4, "traceback": "no error here"}) is None


def test_kernel_rules_follow_the_report_not_its_preamble():
    eng = RuleEngine.default()
    gpf = ("[ 1.0] general protection fault, probably for non-canonical address 0xdffffc0000000002: 0000 [#1]\n"
           "[ 1.1] KASAN: null-ptr-deref in range [0x0000000000000010-0x0000000000000017]\n")
    assert eng.match_row({"id": 1, "log": gpf}).rule.labels["crash_class"] == "general-protection-fault"
    wild = gpf.replace("KASAN: null-ptr-deref", "KASAN: maybe wild-memory-access")
    assert eng.match_row({"id": 1, "log": wild}).rule.labels["crash_class"] == "general-protection-fault"
    usercopy = "------------[ cut here ]------------\nkernel BUG at mm/usercopy.c:84!\ninvalid opcode: 0000 [#1] SMP\n"
    assert eng.match_row({"id": 2, "log": usercopy}).rule.id == "usercopy-bug"
    lockdep = "WARNING: CPU: 0 PID: 4073 at kernel/locking/lockdep.c:734 register_lock_class+0xe10/0x1860\n"
    assert eng.match_row({"id": 3, "log": lockdep}).rule.labels["crash_class"] == "lockdep-or-locking"


@pytest.mark.parametrize("rule, msg", [
    ({"pattern": "x"}, "missing 'id'"),
    ({"id": "a"}, "missing or empty 'pattern'"),
    ({"id": "a", "pattern": "("}, "invalid regex"),
    ({"id": "a", "pattern": "x", "confidence": 2}, "confidence must be in"),
    ({"id": "a", "pattern": "x", "kind": "java"}, "kind must be"),
    ({"id": "a", "pattern": "(?P<k>x)", "capture": ["nope"]}, "not named groups"),
])
def test_bad_rules_are_clear(tmp_path, rule, msg):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"rules": [rule]}))
    with pytest.raises(InputError, match=msg):
        load_rules(p)


def test_yaml_rules_and_duplicates(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("rules:\n  - {id: a, pattern: 'Boom (?P<what>\\w+)', capture: [what], kind: python, field: error}\n")
    eng = RuleEngine(load_rules(p))
    assert eng.match_text("python", {"error": "ValueError: Boom now"}).params == {"what": "now"}
    p.write_text("rules:\n  - {id: a, pattern: x}\n  - {id: a, pattern: y}\n")
    with pytest.raises(InputError, match="duplicate"):
        load_rules(p)
    with pytest.raises(InputError, match="no such rule file"):
        load_rules(tmp_path / "missing.json")


def test_homeostasis_format(tmp_path):
    p = tmp_path / "h.json"
    p.write_text(json.dumps({"name": "py", "rules": [{"id": "keyerror_missing", "pattern": "KeyError: '(.*)'",
                                                     "type": "KeyError", "root_cause": "dict_key_not_found",
                                                     "suggestion": "use .get", "confidence": "high", "severity": "medium"}]}))
    rules = load_homeostasis(p)
    assert rules[0].confidence == 0.9 and rules[0].labels["root_cause"] == "dict_key_not_found"
    assert RuleEngine(rules).match_text("python", {"text": "KeyError: 'a'"}).rule.id == "keyerror_missing"


@pytest.mark.parametrize("log, rule_id", [
    ("------------[ cut here ]------------\nrefcount_t: increment on 0; use-after-free.\n"
     "WARNING: CPU: 0 PID: 1 at lib/refcount.c:156 refcount_inc_checked+0x61/0x70\n", "refcount"),
    ("rust_kernel: panicked at rust/kernel/x.rs:1:1:\nattempt to add with overflow\n"
     "------------[ cut here ]------------\nkernel BUG at rust/helpers/bug.c:7!\n", "rust-overflow"),
    ("[ 9.0] syz-executor: some output\nSeaBIOS (version 1.8.2-20171012_061934-google)\nBooting from Hard Disk 0...\n",
     "reboot"),
])
def test_kernel_rule_order_prefers_the_specific_report(log, rule_id):
    assert RuleEngine.default().match_row({"id": 1, "log": log}).rule.id == rule_id
