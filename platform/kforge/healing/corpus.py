"""The embedded default data: tracebacks produced by *running* a shipped corpus of faulty programs.

Each ``data/programs/*.py.txt`` is a small Python program with a known bug and a header line
``# labels: {...}`` (root cause, refined exception type, pipeline stage, with JunoBench's field
names). :func:`run_corpus` executes every program in a fresh interpreter inside a temporary
directory and keeps the real traceback it prints.

Each program also states what it is *meant* to do, in two trailing comment lines (at the end, so
the line numbers in its traceback do not move)::

    # intended: {"why": "...", "stdout": "expected output", "assert": ["a module-level condition"]}
    # reference fix: [["old text", "new text"], ...]

``stdout`` (optional) is the exact output of the intended program, ``assert`` (optional) conditions
on its module-level names once it has run; at least one of the two is given. The reference fix is
the edit a person would make: applied to the program it must meet both (a test checks it), so the
stated behaviour is reachable. :mod:`kforge.healing.fixes` judges fix strategies against it.
"""

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kforge.errors import InputError

TIMEOUT_S = 20


@dataclass(frozen=True)
class Intended:
    """What a corpus program is meant to do (see the module docstring)."""

    why: str
    stdout: str | None
    asserts: tuple[str, ...]
    reference_fix: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Program:
    name: str
    source: str
    labels: dict[str, str]
    intended: Intended | None = None

    @property
    def code(self) -> str:
        """The source without its ``# intended:`` / ``# reference fix:`` lines."""
        keep = [line for line in self.source.splitlines() if not line.startswith((INTENDED, REFERENCE_FIX))]
        return "\n".join(keep) + "\n"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


INTENDED = "# intended:"
REFERENCE_FIX = "# reference fix:"


def _json_line(path: Path, src: str, prefix: str) -> Any:
    for line in src.splitlines():
        if line.startswith(prefix):
            try:
                return json.loads(line.removeprefix(prefix))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: bad '{prefix}' line ({exc.msg})") from None
    return None


def parse_intended(path: Path, src: str) -> Intended | None:
    """The program's ``# intended:`` and ``# reference fix:`` lines (None when it states neither)."""
    spec, fix = _json_line(path, src, INTENDED), _json_line(path, src, REFERENCE_FIX)
    if spec is None and fix is None:
        return None
    if not isinstance(spec, dict) or not isinstance(fix, list) or not fix:
        raise InputError(f"{path}: needs both an '{INTENDED} {{...}}' line and a non-empty '{REFERENCE_FIX} [...]' line")
    stdout, asserts = spec.get("stdout"), spec.get("assert") or []
    if stdout is None and not asserts:
        raise InputError(f"{path}: '{INTENDED}' states neither 'stdout' nor 'assert'")
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in fix):
        raise InputError(f"{path}: '{REFERENCE_FIX}' must be a list of [old, new] string pairs")
    return Intended(str(spec.get("why", "")), None if stdout is None else str(stdout), tuple(str(a) for a in asserts),
                    tuple((str(a), str(b)) for a, b in fix))


def programs_dir() -> Path:
    return Path(str(resources.files("kforge.healing") / "data" / "programs"))


def load_programs(directory: Path | None = None) -> list[Program]:
    directory = directory or programs_dir()
    out = []
    for p in sorted(directory.glob("*.py.txt")):
        src = p.read_text()
        labels: dict[str, str] = {}
        for line in src.splitlines()[:5]:
            if line.startswith("# labels:"):
                try:
                    labels = json.loads(line.removeprefix("# labels:"))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{p}: bad '# labels:' header ({exc.msg})") from None
        out.append(Program(p.name.removesuffix(".py.txt"), src, labels, parse_intended(p, src)))
    if not out:
        raise InputError(f"{directory}: no *.py.txt programs")
    return out


def run_program(source: str, name: str = "prog", timeout_s: int = TIMEOUT_S) -> Run:
    """Run ``source`` in the sandbox every program and generated fix runs in
    (:func:`kforge.healing.sandbox.run_python`): exit code, stdout and stderr."""
    from kforge.healing import sandbox

    r = sandbox.run_python(source, name, limits=sandbox.Limits(timeout_s=float(timeout_s)))
    return Run(r.code, r.stdout, r.stderr)


def run_source(source: str, name: str = "prog", timeout_s: int = TIMEOUT_S) -> tuple[int, str]:
    """Run ``source`` in a fresh interpreter in a temp dir; (exit code, stderr)."""
    run = run_program(source, name, timeout_s)
    return run.code, run.stderr


def run_corpus(programs: list[Program] | None = None) -> list[dict[str, Any]]:
    """One row per program: id, program, traceback (real stderr), exit_code and the labels."""
    rows = []
    for prog in programs or load_programs():
        code, err = run_source(prog.source, prog.name)
        rows.append({"id": f"corpus-{prog.name}", "program": prog.name, "traceback": err, "exit_code": code,
                     **prog.labels})
    return rows
