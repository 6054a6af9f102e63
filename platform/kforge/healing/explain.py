"""Human-readable explanation of one error: parsed fields, matched rule, model predictions."""

from typing import Any

from kforge.healing.features import record
from kforge.healing.rules import RuleEngine, match_texts


def explain_text(text: str, model: Any = None) -> str:
    kind = "kernel" if any(k in text for k in ("Call Trace", "BUG:", "WARNING:", "KASAN", "Kernel panic", "RIP:", "INFO: ")) \
        and "Traceback (most recent call last)" not in text else "python"
    row = {"id": "explain", "log" if kind == "kernel" else "traceback": text}
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
    if model is not None:
        out = model.classify([row])[0]
        for k, v in out.items():
            if k.startswith("pred_"):
                lines.append(f"{k}: {v} (confidence {out.get('confidence_' + k[5:], '-')})")
    else:
        lines.append("model: none trained yet (rules only)")
    return "\n".join(lines)
