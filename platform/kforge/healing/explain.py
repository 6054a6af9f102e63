"""Human-readable explanation of one error: parsed fields, matched rule, model predictions.

Example::

    e = explain_error(Path("oops.log").read_text(), model, error_id="err-1")
    print(e.text); e.classified  # the model's output row (None without a model)
"""

import hashlib
from dataclasses import dataclass
from typing import Any

from kforge.healing.features import record
from kforge.healing.rules import RuleEngine, match_texts


@dataclass(frozen=True)
class Explanation:
    text: str
    row: dict[str, Any]                   # the error as ``classify`` reads it
    classified: dict[str, Any] | None     # the model's output row; None without a model
    rule_id: str | None
    rule_confidence: float | None


def error_id_of(text: str) -> str:
    """A stable id for an error given as text (to cite in ``kforge feedback add healing``)."""
    return "err-" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]


def explain_error(text: str, model: Any = None, error_id: str = "explain") -> Explanation:
    kind = "kernel" if any(k in text for k in ("Call Trace", "BUG:", "WARNING:", "KASAN", "Kernel panic", "RIP:", "INFO: ")) \
        and "Traceback (most recent call last)" not in text else "python"
    row = {"id": error_id, "log" if kind == "kernel" else "traceback": text}
    rec = record(row)
    parsed = rec["parsed"]
    engine = model.rules if model is not None else RuleEngine.default()
    m = engine.match_text(kind, match_texts(kind, text, parsed))
    lines = [f"kind: {kind}"]
    if kind == "kernel":
        lines += [f"crash line: {parsed.crash_line or '(no crash marker found)'}", f"marker: {parsed.marker or '-'}",
                  f"guilty frame: {parsed.guilty.function if parsed.guilty else '-'}  file: {parsed.guilty_file or '-'}",
                  f"access: {parsed.access or '-'}", f"frames: {', '.join(f.function for f in parsed.frames[:8]) or '-'}"]
    else:
        uf = parsed.user_frame
        lines += [f"exception: {parsed.exc_type or '(not found)'}: {parsed.message}",
                  f"guilty frame: {uf.file}:{uf.line} in {uf.function}" if uf else "guilty frame: -",
                  f"libraries: {', '.join(parsed.libraries) or '-'}"]
    lines.append(f"parameters: {parsed.params()}")
    if m:
        lines += [f"rule: {m.rule.id} ({m.rule.category}, severity {m.rule.severity}, confidence {m.rule.confidence})",
                  f"root cause: {m.rule.root_cause}", f"suggested fix: {m.rule.suggested_fix}",
                  f"fix strategies: {', '.join(m.rule.strategies) or '-'}"]
    else:
        lines.append("rule: none matched")
    out = None
    if model is not None:
        out = model.classify([row])[0]
        for k, v in out.items():
            if k.startswith("pred_"):
                lines.append(f"{k}: {v} (confidence {out.get('confidence_' + k[5:], '-')})")
    else:
        lines.append("model: none trained yet (rules only)")
    return Explanation("\n".join(lines), row, out, m.rule.id if m else None, float(m.rule.confidence) if m else None)
