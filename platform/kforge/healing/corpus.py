"""The embedded default data: tracebacks produced by *running* a shipped corpus of faulty programs.

Each ``data/programs/*.py.txt`` is a small Python program with a known bug and a header line
``# labels: {...}`` (root cause, refined exception type, pipeline stage, with JunoBench's field
names). :func:`run_corpus` executes every program in a fresh interpreter inside a temporary
directory and keeps the real traceback it prints.
"""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kforge.errors import InputError

TIMEOUT_S = 20


@dataclass(frozen=True)
class Program:
    name: str
    source: str
    labels: dict[str, str]


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
        out.append(Program(p.name.removesuffix(".py.txt"), src, labels))
    if not out:
        raise InputError(f"{directory}: no *.py.txt programs")
    return out


def run_source(source: str, name: str = "prog", timeout_s: int = TIMEOUT_S) -> tuple[int, str]:
    """Run ``source`` in a fresh interpreter in a temp dir; (exit code, stderr)."""
    with tempfile.TemporaryDirectory(prefix="kforge-heal-") as d:
        path = Path(d) / f"{name}.py"
        path.write_text(source)
        try:
            proc = subprocess.run([sys.executable, "-I", path.name], cwd=d, capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return 124, "TimeoutError: program did not finish"
        return proc.returncode, proc.stderr.replace(d + "/", "")


def run_corpus(programs: list[Program] | None = None) -> list[dict[str, Any]]:
    """One row per program: id, program, traceback (real stderr), exit_code and the labels."""
    rows = []
    for prog in programs or load_programs():
        code, err = run_source(prog.source, prog.name)
        rows.append({"id": f"corpus-{prog.name}", "program": prog.name, "traceback": err, "exit_code": code,
                     **prog.labels})
    return rows
