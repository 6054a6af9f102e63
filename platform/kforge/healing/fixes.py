"""Fix strategies as source transforms, applied to the corpus programs and re-run for real outcomes.

A strategy edits the program at the guilty line named by the traceback. Success = the patched
program exits 0. The outcome table (program, error class, strategy, success) is real data for
the strategy bandit and the fix-effectiveness model.
"""

import re
from collections.abc import Callable
from typing import Any

from kforge.healing.corpus import Program, run_source
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


def fix_outcomes(programs: list[Program], corpus_rows: list[dict[str, Any]], candidates: Callable[[dict[str, Any]], list[str]]) -> list[dict[str, Any]]:
    """Try every candidate strategy on every program; one row per applicable (program, strategy)."""
    by_name = {p.name: p for p in programs}
    out = []
    for row in corpus_rows:
        prog = by_name[row["program"]]
        err = parse_traceback(row["traceback"])
        for strategy in candidates(row):
            patched = apply_strategy(prog.source, strategy, row["traceback"], f"{prog.name}.py")
            if patched is None:
                continue
            code, _ = run_source(patched, prog.name)
            out.append({"error_id": row["id"], "program": prog.name, "error_class": row.get("error_class", err.short_type),
                        "exc_type": err.short_type, "strategy": strategy, "success": code == 0})
    return out
