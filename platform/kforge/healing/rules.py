"""Rules as data: error patterns mapped to root causes, categories, fixes and labels.

A rule file is JSON or YAML: ``{"rules": [ {...}, ... ]}`` (or a bare list). Fields:

``id`` (unique), ``kind`` (``kernel`` | ``python`` | ``any``), ``pattern`` (a regex), ``field``
(what it is matched against: ``crash_line`` for kernel logs - the crash line and the next report
lines -, ``error`` for Python - ``Type: message`` -, ``text`` - the raw input -, or ``verdict`` - the
parser's one-line summary: ``crash report: <marker>`` (``crash report: <marker> (<system>)`` for a report
of another kernel: freebsd, netbsd, openbsd, fuchsia, gvisor, darwin) / ``no crash report found`` for kernel logs,
``exception: <type>`` / ``no exception found`` for Python), ``root_cause``,
``category``, ``severity`` (low/medium/high/critical), ``confidence`` (0..1 or low/medium/high),
``suggested_fix``, ``capture`` (names of the pattern's named groups kept as parameters),
``labels`` (the model labels the rule implies, e.g. ``{"crash_class": "kasan-use-after-free"}``)
and ``strategies`` (fix strategy ids the bandit chooses among).

Homeostasis rule files (``{"name":..., "rules": [{"id", "pattern", "type", "root_cause",
"suggestion", "confidence", "severity", "category"}]}``) load with :func:`load_homeostasis`.

Example::

    engine = RuleEngine.default()
    m = engine.match_row({"traceback": tb_text})
    m.rule.id, m.params     # 'py-keyerror', {'key': 'price'}
"""

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from kforge.errors import InputError
from kforge.healing.features import kind_of, raw_text
from kforge.healing.kernel_log import parse_kernel_log
from kforge.healing.traceback import parse_traceback

_CONF = {"low": 0.5, "medium": 0.7, "high": 0.9, "very_high": 0.95}
_SEVERITIES = ("low", "medium", "high", "critical")
_FIELDS = ("crash_line", "error", "text", "verdict")


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: str
    kind: str = "any"
    target: str = "text"          # the ``field`` key of the rule file
    root_cause: str = ""
    category: str = ""
    severity: str = "medium"
    confidence: float = 0.7
    suggested_fix: str = ""
    capture: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    strategies: tuple[str, ...] = ()
    source: str = ""

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "field": self.target, "pattern": self.pattern,
                "root_cause": self.root_cause, "category": self.category, "severity": self.severity,
                "confidence": self.confidence, "suggested_fix": self.suggested_fix, "capture": list(self.capture),
                "labels": dict(self.labels), "strategies": list(self.strategies)}


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _CACHE:
        _CACHE[pattern] = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    return _CACHE[pattern]


@dataclass(frozen=True)
class RuleMatch:
    rule: Rule
    params: dict[str, str]
    matched: str


def _confidence(v: Any, where: str) -> float:
    if isinstance(v, str) and v.lower() in _CONF:
        return _CONF[v.lower()]
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: confidence must be a number in [0, 1] or low/medium/high, got {v!r}") from None
    if not 0.0 <= f <= 1.0:
        raise InputError(f"{where}: confidence must be in [0, 1], got {f}")
    return f


def rule_from_dict(d: dict[str, Any], where: str = "rule", source: str = "") -> Rule:
    """Validate one rule dict (clear errors naming the rule and the field)."""
    if not isinstance(d, dict):
        raise InputError(f"{where}: a rule must be an object, got {type(d).__name__}")
    rid = str(d.get("id") or "").strip()
    if not rid:
        raise InputError(f"{where}: missing 'id'")
    where = f"{where} {rid!r}"
    pattern = d.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise InputError(f"{where}: missing or empty 'pattern'")
    try:
        rx = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise InputError(f"{where}: invalid regex pattern: {exc}") from None
    kind = d.get("kind", "any")
    if kind not in ("kernel", "python", "any"):
        raise InputError(f"{where}: kind must be kernel, python or any, got {kind!r}")
    fld = d.get("field", "text")
    if fld not in _FIELDS:
        raise InputError(f"{where}: field must be one of {', '.join(_FIELDS)}, got {fld!r}")
    sev = str(d.get("severity", "medium")).lower()
    if sev not in _SEVERITIES:
        raise InputError(f"{where}: severity must be one of {', '.join(_SEVERITIES)}, got {sev!r}")
    capture = tuple(d.get("capture") or ())
    missing = [c for c in capture if c not in rx.groupindex]
    if missing:
        raise InputError(f"{where}: capture names {missing} are not named groups of the pattern")
    labels = d.get("labels") or {}
    if not isinstance(labels, dict):
        raise InputError(f"{where}: labels must be an object of label -> value")
    return Rule(id=rid, pattern=pattern, kind=kind, target=fld, root_cause=str(d.get("root_cause") or ""),
                category=str(d.get("category") or ""), severity=sev,
                confidence=_confidence(d.get("confidence", 0.7), where),
                suggested_fix=str(d.get("suggested_fix") or d.get("suggestion") or ""), capture=capture,
                labels={str(k): str(v) for k, v in labels.items()},
                strategies=tuple(str(s) for s in d.get("strategies") or ()), source=source)


def _read_structured(path: Path) -> Any:
    if not path.exists():
        raise InputError(f"{path}: no such rule file")
    text = path.read_text(errors="replace")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:
        raise InputError(f"{path}: not a valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'} rule file: {exc}") from None


def load_rules(path: str | Path) -> list[Rule]:
    """Load a kforge rule file (JSON or YAML)."""
    path = Path(path)
    data = _read_structured(path)
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a list of rules or an object with 'rules'")
    rules = [rule_from_dict(d, f"{path.name}[{i}]", source=path.name) for i, d in enumerate(items)]
    dup = {r.id for r in rules if sum(x.id == r.id for x in rules) > 1}
    if dup:
        raise InputError(f"{path}: duplicate rule ids: {', '.join(sorted(dup))}")
    return rules


def load_homeostasis(path: str | Path, language: str = "python") -> list[Rule]:
    """Load a Homeostasis rule file; its rules match the raw error text."""
    path = Path(path)
    data = _read_structured(path)
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"{path}: not a Homeostasis rule file (no 'rules' list)")
    out = []
    for i, d in enumerate(items):
        if not isinstance(d, dict):
            raise InputError(f"{path}[{i}]: a rule must be an object")
        conv = {"id": d.get("id"), "pattern": d.get("pattern"), "kind": "python" if language == "python" else "any",
                "field": "text", "root_cause": d.get("root_cause", ""), "category": d.get("category", language),
                "severity": str(d.get("severity", "medium")).lower() if str(d.get("severity", "medium")).lower() in _SEVERITIES else "medium",
                "confidence": d.get("confidence", "medium"), "suggested_fix": d.get("suggestion", ""),
                "labels": {"root_cause": d.get("root_cause", ""), "rule_id": d.get("id", "")}}
        out.append(rule_from_dict(conv, f"{path.name}[{i}]", source=f"homeostasis:{path.name}"))
    return out


def default_rule_files() -> list[Path]:
    base = resources.files("kforge.healing") / "data" / "rules"
    return sorted(Path(str(p)) for p in base.iterdir() if str(p).endswith((".json", ".yaml", ".yml")))


class RuleEngine:
    """First matching rule wins (files are ordered specific-first)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    @classmethod
    def default(cls, extra: list[str | Path] | None = None) -> "RuleEngine":
        rules: list[Rule] = []
        for p in [*default_rule_files(), *(extra or [])]:
            rules.extend(load_rules(p))
        return cls(rules)

    def match_text(self, kind: str, texts: dict[str, str]) -> RuleMatch | None:
        for r in self.rules:
            if r.kind not in ("any", kind):
                continue
            target = texts.get(r.target, "")
            if not target:
                continue
            m = r.regex.search(target)
            if m:
                params = {k: v for k, v in m.groupdict().items() if v is not None and k in r.capture}
                return RuleMatch(r, params, m.group(0)[:200])
        return None

    def match_row(self, row: dict[str, Any], parsed: Any = None) -> RuleMatch | None:
        kind = kind_of(row)
        return self.match_text(kind, match_texts(kind, raw_text(row), parsed))


def match_texts(kind: str, text: str, parsed: Any = None) -> dict[str, str]:
    """The strings rules match against, for one input."""
    if kind == "kernel":
        crash = parsed if parsed is not None else parse_kernel_log(text)
        head = "\n".join([crash.crash_line, *crash.next_lines[:3]]) if crash.marker else ""
        verdict = f"crash report: {crash.marker}" if crash.marker else "no crash report found"
        if crash.marker and getattr(crash, "os", "linux") not in ("", "linux"):
            verdict += f" ({crash.os})"   # another system's report: its own rules (see os_reports)
        return {"crash_line": head, "text": text[:20000], "verdict": verdict}
    err = parsed if parsed is not None else parse_traceback(text)
    verdict = f"exception: {err.short_type}" if err.exc_type else "no exception found"
    return {"error": f"{err.short_type}: {err.message}" if err.exc_type else "", "text": text[:20000], "verdict": verdict}
