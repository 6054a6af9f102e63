"""Fix strategies as source transforms, applied to the corpus programs and re-run for real outcomes.

A strategy edits the program at the guilty line named by the traceback. A fix *succeeds* only when
the patched program does what the program states it is meant to do (its ``# intended:`` line, see
:mod:`kforge.healing.corpus`): it exits 0, prints the expected output and meets the stated
conditions, *and* the patch does not suppress an error (add an exception handler that only
``pass``-es, ``continue``-s or sets a name to None, or a ``contextlib.suppress``). Exiting 0 is not
enough: wrapping the failing line in ``try/except: pass`` exits 0 and does nothing it was meant to.

Each outcome row (program, error class, strategy, success) also says why a fix failed
(``failure``: one of :data:`FAILURES`, with a short ``detail``); the rows are real data for the
strategy bandit and the fix-effectiveness model.

Example::

    v = judge(prog, apply_strategy(prog.source, "guard-try", tb, f"{prog.name}.py"), "KeyError")
    v.success, v.failure      # False, 'suppressed'
"""

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kforge.errors import InputError
from kforge.healing.corpus import TIMEOUT_S, Intended, Program
from kforge.healing.sandbox import Limits, run_python
from kforge.healing.traceback import PyError, parse_traceback

GENERIC = "guard-try"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _guard_try(lines: list[str], i: int, err: PyError) -> list[str] | None:
    ind = _indent(lines[i])
    exc = err.short_type if err.short_type.isidentifier() else "Exception"
    if lines[i].rstrip().endswith(":"):
        return None
    return [*lines[:i], f"{ind}try:", f"{ind}    {lines[i].strip()}", f"{ind}except {exc}:", f"{ind}    pass", *lines[i + 1:]]


def _define_name(lines: list[str], i: int, err: PyError) -> list[str] | None:
    name = err.params().get("name")
    if not name:
        return None
    return [f"{name} = None", *lines]


def _dict_get(lines: list[str], i: int, err: PyError) -> list[str] | None:
    new = re.sub(r"(\w+(?:\[[^\]]+\])*)\[(['\"][^'\"]+['\"]|\w+)\]", r"\1.get(\2)", lines[i], count=1)
    return None if new == lines[i] else [*lines[:i], new, *lines[i + 1:]]


def _zero_guard(lines: list[str], i: int, err: PyError) -> list[str] | None:
    new = re.sub(r"(\w+(?:\([^()]*\))?) / (\(?[\w +()-]+\)?)", r"(\1 / \2 if \2 else 0)", lines[i], count=1)
    return None if new == lines[i] else [*lines[:i], new, *lines[i + 1:]]


def _cast_to_str(lines: list[str], i: int, err: PyError) -> list[str] | None:
    new = re.sub(r'\+ (\w+) \+', r"+ str(\1) +", lines[i])
    return None if new == lines[i] else [*lines[:i], new, *lines[i + 1:]]


def _getattr_default(lines: list[str], i: int, err: PyError) -> list[str] | None:
    attr = err.params().get("attribute")
    if not attr:
        return None
    new = re.sub(rf"([\w\]\)]+)\.{attr}\b(\(\))?", rf"getattr(\1, '{attr}', None)", lines[i], count=1)
    return None if new == lines[i] else [*lines[:i], new, *lines[i + 1:]]


def _guard_import(lines: list[str], i: int, err: PyError) -> list[str] | None:
    line = lines[i].strip()
    m = re.match(r"(?:import (\w+)(?: as (\w+))?|from [\w.]+ import (\w+))", line)
    if not m:
        return None
    name = m.group(2) or m.group(1) or m.group(3)
    return [*lines[:i], "try:", f"    {line}", "except ImportError:", f"    {name} = None", *lines[i + 1:]]


def _coerce_numeric(lines: list[str], i: int, err: PyError) -> list[str] | None:
    new = re.sub(r"\b(int|float)\((\w+)\)", r"_kf_num(\1, \2)", lines[i])
    if new == lines[i]:
        return None
    helper = ["def _kf_num(kind, v):", "    try:", "        return kind(v)", "    except ValueError:", "        return kind(0)"]
    return [*helper, *lines[:i], new, *lines[i + 1:]]


def _create_missing_file(lines: list[str], i: int, err: PyError) -> list[str] | None:
    path = err.params().get("path")
    if not path:
        return None
    return ["import os as _kf_os", f"_kf_os.makedirs(_kf_os.path.dirname({path!r}) or '.', exist_ok=True)",
            f"open({path!r}, 'a').close()", *lines]


STRATEGIES: dict[str, Callable[[list[str], int, PyError], list[str] | None]] = {
    "guard-try": _guard_try, "define-name": _define_name, "dict-get-default": _dict_get, "zero-guard": _zero_guard,
    "cast-to-str": _cast_to_str, "getattr-default": _getattr_default, "guard-import": _guard_import,
    "coerce-numeric": _coerce_numeric, "create-missing-file": _create_missing_file,
}


def apply_strategy(source: str, strategy: str, traceback_text: str, filename: str) -> str | None:
    """The patched source, or None when the strategy does not apply to this error."""
    err = parse_traceback(traceback_text)
    frames = [f for f in err.frames if f.file.endswith(filename)]
    fn = STRATEGIES.get(strategy)
    if fn is None or not frames:
        return None
    lines = source.splitlines()
    i = frames[-1].line - 1
    if not 0 <= i < len(lines):
        return None
    new = fn(lines, i, err)
    return None if new is None else "\n".join(new) + "\n"


SUPPRESSED, STILL_RAISES, NEW_ERROR, WRONG_OUTPUT, CHECK_FAILED, TIMEOUT = (
    "suppressed", "still raises", "new error", "wrong output", "assertion failed", "timeout")
FAILURES = (SUPPRESSED, STILL_RAISES, NEW_ERROR, WRONG_OUTPUT, CHECK_FAILED, TIMEOUT)
_CHECK_MARK = "kforge-intended-check-failed: "


@dataclass(frozen=True)
class Verdict:
    success: bool
    failure: str     # "" on success, else one of FAILURES
    detail: str      # what was seen (the exception, the output, the failed condition)


def _swallows(handler: ast.ExceptHandler) -> bool:
    def inert(stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.Pass | ast.Continue | ast.Break):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return True
        return isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) and stmt.value.value is None

    return all(inert(s) for s in handler.body)


def suppressions(source: str) -> int:
    """How many places in ``source`` swallow an exception: handlers whose body only passes, continues,
    breaks or sets names to None, and ``suppress(...)`` calls. 0 for source that does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return 0
    n = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and _swallows(node):
            n += 1
        elif isinstance(node, ast.Call):
            fn = node.func
            n += (fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")) == "suppress"
    return n


def with_checks(source: str, intended: Intended) -> str:
    """``source`` followed by its stated conditions, each ending the run with a marked message when unmet."""
    lines = [source.rstrip("\n"), "", "# kforge: the program's intended behaviour"]
    for cond in intended.asserts:
        lines += ["try:", f"    _kf_ok = bool({cond})", "except Exception:", "    _kf_ok = False",
                  "if not _kf_ok:", f"    raise SystemExit({_CHECK_MARK + cond!r})"]
    return "\n".join(lines) + "\n"


def reference_source(prog: Program) -> str:
    """The program with its reference fix applied (each ``old`` text must occur exactly once)."""
    intended = _intended(prog)
    src = prog.code
    for old, new in intended.reference_fix:
        if src.count(old) != 1:
            raise InputError(f"{prog.name}: reference fix text {old!r} occurs {src.count(old)} times (needs exactly once)")
        src = src.replace(old, new)
    return src


def _intended(prog: Program) -> Intended:
    if prog.intended is None:
        raise InputError(f"{prog.name}: states no intended behaviour (an '# intended:' line), so no fix can be judged")
    return prog.intended


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def judge(prog: Program, patched: str, original_exc: str) -> Verdict:
    """Run ``patched`` in the sandbox (:func:`kforge.healing.sandbox.run_python`) and judge it against
    ``prog``'s intended behaviour (``original_exc``: the short exception type the unpatched program raised)."""
    intended = _intended(prog)
    run = run_python(with_checks(patched, intended), prog.name, limits=Limits(timeout_s=TIMEOUT_S))
    behaviour = Verdict(True, "", "")
    if run.timed_out:
        behaviour = Verdict(False, TIMEOUT, "did not finish")
    elif run.code != 0 and _CHECK_MARK in run.stderr:
        behaviour = Verdict(False, CHECK_FAILED, run.stderr.split(_CHECK_MARK, 1)[1].strip())
    elif run.code != 0:
        err = parse_traceback(run.stderr)
        kind = STILL_RAISES if err.short_type == original_exc else NEW_ERROR
        behaviour = Verdict(False, kind, f"{err.short_type or 'exit ' + str(run.code)}: {err.message}")
    elif intended.stdout is not None and run.stdout.rstrip() != intended.stdout.rstrip():
        behaviour = Verdict(False, WRONG_OUTPUT, f"expected {intended.stdout.rstrip()!r}, got {run.stdout.rstrip()!r}")
    if suppressions(patched) > suppressions(prog.source):
        seen = "it then met the intended behaviour" if behaviour.success else f"it then failed: {behaviour.failure}"
        return Verdict(False, SUPPRESSED, f"the patch swallows an exception ({seen})")
    return Verdict(behaviour.success, behaviour.failure, _short(behaviour.detail))


def fix_outcomes(programs: list[Program], corpus_rows: list[dict[str, Any]], candidates: Callable[[dict[str, Any]], list[str]]) -> list[dict[str, Any]]:
    """Try every candidate strategy on every program; one row per applicable (program, strategy),
    with ``success`` judged by :func:`judge` and ``failure``/``detail`` saying why it failed."""
    by_name = {p.name: p for p in programs}
    out = []
    for row in corpus_rows:
        prog = by_name[row["program"]]
        err = parse_traceback(row["traceback"])
        for strategy in candidates(row):
            patched = apply_strategy(prog.source, strategy, row["traceback"], f"{prog.name}.py")
            if patched is None:
                continue
            v = judge(prog, patched, err.short_type)
            out.append({"error_id": row["id"], "program": prog.name, "error_class": row.get("error_class", err.short_type),
                        "exc_type": err.short_type, "strategy": strategy, "success": v.success,
                        "failure": v.failure, "detail": v.detail})
    return out
