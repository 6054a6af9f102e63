"""A fix succeeds only when the patched program does what it states it is meant to do, and does not
swallow the error: exiting 0 is not enough (issue 15, item 4)."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from kforge.errors import InputError
from kforge.healing.corpus import Program, load_programs, run_corpus, run_program
from kforge.healing.fixes import (
    CHECK_FAILED,
    FAILURES,
    NEW_ERROR,
    SUPPRESSED,
    WRONG_OUTPUT,
    apply_strategy,
    fix_outcomes,
    judge,
    reference_source,
    suppressions,
)

PROGRAMS = {p.name: p for p in load_programs()}


def _outcomes(names: list[str], strategies: list[str]) -> dict[tuple[str, str], dict]:
    progs = [PROGRAMS[n] for n in names]
    rows = run_corpus(progs)
    return {(o["program"], o["strategy"]): o for o in fix_outcomes(progs, rows, lambda _row: strategies)}


def test_swallowing_the_error_is_not_a_fix_even_when_the_program_exits_0():
    """guard-try on memory_error exits 0 and prints exactly the intended (empty) output: it used to
    count as a success. assert_shape exits 0 and prints "ok" but the batch still has 3 features."""
    out = _outcomes(["memory_error", "assert_shape", "keyerror_counts"], ["guard-try"])
    for name in ("memory_error", "assert_shape", "keyerror_counts"):
        o = out[(name, "guard-try")]
        assert (o["success"], o["failure"]) == (False, SUPPRESSED), o
    prog = PROGRAMS["memory_error"]
    patched = apply_strategy(prog.source, "guard-try", run_program(prog.source, prog.name).stderr, "memory_error.py")
    assert patched is not None and run_program(patched, prog.name).code == 0   # what the old rule counted as fixed
    assert "met the intended behaviour" in out[("memory_error", "guard-try")]["detail"]
    assert "assertion failed" in out[("assert_shape", "guard-try")]["detail"]


def test_each_failure_says_why_and_real_fixes_still_succeed():
    out = _outcomes(["valueerror_float", "valueerror_cast", "keyerror_column", "typeerror_concat", "zerodivision_rate",
                     "keyerror_nested_json"], ["coerce-numeric", "dict-get-default", "cast-to-str", "zero-guard"])
    assert out[("valueerror_float", "coerce-numeric")]["failure"] == WRONG_OUTPUT      # the class name became 0.0
    assert "0.0]" in out[("valueerror_float", "coerce-numeric")]["detail"]
    assert out[("valueerror_cast", "coerce-numeric")]["failure"] == CHECK_FAILED       # 'n/a' counted as age 0
    assert out[("keyerror_column", "dict-get-default")]["failure"] == NEW_ERROR        # None * qty
    assert out[("keyerror_column", "dict-get-default")]["detail"].startswith("TypeError")
    for key in (("typeerror_concat", "cast-to-str"), ("zerodivision_rate", "zero-guard"),
                ("keyerror_nested_json", "dict-get-default")):
        assert (out[key]["success"], out[key]["failure"], out[key]["detail"]) == (True, "", ""), key
    assert all(o["failure"] in FAILURES for o in out.values() if not o["success"])


def test_every_program_states_a_reachable_intended_behaviour():
    """The stated behaviour is met by the program's reference fix and not by the faulty program."""
    assert len(PROGRAMS) >= 40
    for prog in PROGRAMS.values():
        assert prog.intended is not None and prog.intended.why, prog.name
        assert prog.intended.stdout is not None or prog.intended.asserts, prog.name

    def verdicts(prog: Program) -> tuple[str, bool, bool]:
        return prog.name, judge(prog, prog.source, "").success, judge(prog, reference_source(prog), "").success

    with ThreadPoolExecutor(4) as pool:     # each judge is a subprocess
        got = list(pool.map(verdicts, PROGRAMS.values()))
    assert [n for n, faulty_ok, _ in got if faulty_ok] == []
    assert [n for n, _, fixed_ok in got if not fixed_ok] == []


@pytest.mark.parametrize(("source", "n"), [
    ("try:\n    f()\nexcept KeyError:\n    pass\n", 1),
    ("try:\n    import np\nexcept ImportError:\n    np = None\n", 1),
    ("for x in y:\n    try:\n        f(x)\n    except Exception:\n        continue\n", 1),
    ("import contextlib\nwith contextlib.suppress(OSError):\n    f()\n", 1),
    ("def num(v):\n    try:\n        return int(v)\n    except ValueError:\n        return 0\n", 0),
    ("try:\n    f()\nexcept KeyError:\n    log('x')\n    raise\n", 0),
    ("this is not python(", 0),
])
def test_suppressions(source, n):
    assert suppressions(source) == n


def test_programs_must_state_their_behaviour(tmp_path: Path):
    prog = replace(PROGRAMS["keyerror_counts"], intended=None)
    with pytest.raises(InputError, match="states no intended behaviour"):
        fix_outcomes([prog], run_corpus([prog]), lambda _row: ["dict-get-default"])
    src = PROGRAMS["keyerror_counts"].code
    (tmp_path / "a.py.txt").write_text(src + '# intended: {"why": "x"}\n# reference fix: [["a", "b"]]\n')
    with pytest.raises(InputError, match="neither 'stdout' nor 'assert'"):
        load_programs(tmp_path)
    (tmp_path / "a.py.txt").write_text(src + '# intended: {"stdout": "1"}\n')
    with pytest.raises(InputError, match="reference fix"):
        load_programs(tmp_path)
    (tmp_path / "a.py.txt").write_text(src + '# intended: {"stdout": "1"\n# reference fix: [["a", "b"]]\n')
    with pytest.raises(InputError, match="bad '# intended:' line"):
        load_programs(tmp_path)
