"""Turn a raw error (kernel console log or Python traceback) into model-ready text fields.

Every model sees the same three fields, whatever the kind of input:

* ``head``: the crash line / exception type and message, normalised (no addresses, numbers);
* ``context``: marker names, the next report lines, guilty frame, access kind, libraries, code line;
* ``raw``: the first 4,000 characters of the raw text (for the plain TF-IDF baseline only);
* ``embed``: the short text the pretrained encoder members embed (:mod:`kforge.healing.embedding`): exception type
  and message, or a kernel crash line with its next lines.
"""

import re
from typing import Any

from kforge.healing.kernel_log import KernelCrash, normalise, parse_kernel_log
from kforge.healing.traceback import PyError, parse_traceback

FIELDS = ("head", "context")
_WORDS = re.compile(r"[A-Za-z_][A-Za-z_]+")


def kind_of(row: dict[str, Any]) -> str:
    """'kernel' for rows with a console ``log``, 'python' for rows with a ``traceback``."""
    if row.get("log") is not None or row.get("report") is not None:
        return "kernel"
    if row.get("traceback") is not None:
        return "python"
    if row.get("text") is not None:
        return "python"
    return ""


def raw_text(row: dict[str, Any]) -> str:
    return str(row.get("log") or row.get("report") or row.get("traceback") or row.get("text") or "")


def kernel_fields(crash: KernelCrash) -> dict[str, str]:
    head = f"marker_{crash.marker or 'none'} {crash.title}" if crash.marker else "marker_none"
    ctx = [" ".join(f"seen_{m}" for m in crash.markers),
           " ".join(normalise(x) for x in crash.next_lines[:4]),
           f"access_{crash.access.get('kind', 'none')}",
           f"guilty_{crash.guilty.function}" if crash.guilty else "guilty_none",
           "has_alloc_stack" if crash.alloc_stack else "", "has_free_stack" if crash.free_stack else "",
           "corrupted_trace" if crash.corrupted else "", f"nframes_{min(len(crash.frames), 10)}"]
    embed = "\n".join([crash.title or "no crash report", *(normalise(x) for x in crash.next_lines[:4])])
    return {"head": head, "context": " ".join(["ctx_kernel", *(x for x in ctx if x)]), "embed": embed}


def python_fields(err: PyError) -> dict[str, str]:
    msg = normalise(re.sub(r"'[^']{0,80}'", "QUOTED", err.message))[:400]
    head = f"exc_{err.short_type or 'none'} {msg}"
    uf = err.user_frame
    ctx = [" ".join(f"lib_{x}" for x in err.libraries) or "lib_none",
           " ".join(f"chained_{x}" for x in err.chained),
           "truncated" if err.truncated else "",
           f"nframes_{min(len(err.frames), 10)}",
           f"userfunc_{uf.function}" if uf else "",
           " ".join(_WORDS.findall(uf.code))[:300] if uf and uf.code else "",
           "cell" if uf and uf.file.startswith(("Cell", "<ipython")) else "script",
           _execution_bucket(err.execution_count)]
    embed = f"{err.short_type}: {err.message[:400]}"   # the code line made embeddings worse (bench/healing_encoder.py)
    return {"head": head, "context": " ".join(["ctx_python", *(x for x in ctx if x)]), "embed": embed}


def _execution_bucket(n: int | None) -> str:
    """The notebook's execution counter on a log2 scale (``execn_1``, ``execn_2-3``, ``execn_4-7``, ...): an error in
    one of the first cells run after a kernel start reads differently from one deep into a session."""
    if n is None or n < 1:
        return "execn_none"
    lo = 1 << (n.bit_length() - 1)
    return "execn_1" if lo == 1 else "execn_64+" if lo >= 64 else f"execn_{lo}-{2 * lo - 1}"


def record(row: dict[str, Any]) -> dict[str, Any]:
    """Parse one input row; returns fields + the parsed object under ``parsed``."""
    kind = kind_of(row)
    text = raw_text(row)
    if kind == "kernel":
        parsed: Any = parse_kernel_log(text)
        fields = kernel_fields(parsed)
    else:
        parsed = parse_traceback(text)
        fields = python_fields(parsed)
    return {"kind": kind, **fields, "raw": text[:4000], "parsed": parsed}


def frame_of(records: list[dict[str, Any]]) -> Any:
    """A pandas frame with the model fields (what the sklearn pipelines consume)."""
    import pandas as pd

    cols = {f: [r.get(f, "") or "rule_none" if f == "rule" else r[f] for r in records] for f in (*FIELDS, "rule", "raw")}
    cols["embed"] = [str(r.get("embed") or "") for r in records]
    return pd.DataFrame(cols)


def rule_tokens(match: Any) -> str:
    """The rule engine's verdict as model input: the rule id and every label it implies."""
    if match is None:
        return "rule_none"
    labels = " ".join(f"{k}={v}".replace(" ", "_") for k, v in match.rule.labels.items())
    return f"rule_{match.rule.id} {labels}"
