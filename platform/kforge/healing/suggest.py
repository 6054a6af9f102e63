"""Rule suggestion: mine templates from errors no rule matched and propose rules.

The structured message of each unmatched error (crash line / ``Type: message``) goes through
:class:`~kforge.healing.templates.Drain`; each template with enough members becomes a candidate
rule whose pattern is the template as a regex. Coverage = rows of the known data the pattern
matches; precision = share of those rows carrying the candidate's majority label (when labels
exist). A human accepts a suggestion by copying it into a rule file.
"""

import re
from collections import Counter
from typing import Any

from kforge.healing.features import kind_of, raw_text
from kforge.healing.kernel_log import parse_kernel_log
from kforge.healing.rules import RuleEngine
from kforge.healing.templates import WILDCARD, Drain
from kforge.healing.traceback import parse_traceback


def message_of(row: dict[str, Any]) -> tuple[str, str]:
    kind = kind_of(row)
    if kind == "kernel":
        return kind, parse_kernel_log(raw_text(row)).crash_line
    err = parse_traceback(raw_text(row))
    return kind, f"{err.short_type}: {err.message}" if err.exc_type else ""


def template_regex(template: str) -> str:
    # a wildcard may also sit inside a token (``blk_<*>``, ``port=<*>``): each one matches a run of non-space
    parts = [r"\S+".join(re.escape(p) for p in t.split(WILDCARD)) if WILDCARD in t else re.escape(t)
             for t in template.split()]
    return r"[\s=,:;()\[\]{}]+".join(parts)


def suggest_rules(rows: list[dict[str, Any]], engine: RuleEngine, label: str | None = None,
                  min_support: int = 2, max_rules: int = 20) -> list[dict[str, Any]]:
    """Candidate rules (as rule-file dicts plus ``coverage``/``precision``/``support``)."""
    msgs = [message_of(r) for r in rows]
    unmatched = [i for i, r in enumerate(rows) if msgs[i][1] and engine.match_row(r) is None]
    drain = Drain(sim_threshold=0.5)
    cluster_of = {i: drain.add(msgs[i][1]) for i in unmatched}
    support = Counter(cluster_of.values())
    templates = drain.templates()
    out = []
    for cid, n in support.most_common():
        if n < min_support or len(out) >= max_rules:
            break
        tpl = templates[cid]
        if sum(t != WILDCARD for t in tpl.split()) < 2:
            continue
        pattern = template_regex(tpl)
        rx = re.compile(pattern)
        members = [i for i, c in cluster_of.items() if c == cid]
        kind = Counter(msgs[i][0] for i in members).most_common(1)[0][0]
        hits = [i for i, (k, m) in enumerate(msgs) if k == kind and m and rx.search(m)]
        sugg: dict[str, Any] = {"id": f"suggested-{kind}-{cid}", "kind": kind,
                                "field": "crash_line" if kind == "kernel" else "error", "pattern": pattern,
                                "root_cause": "", "category": "suggested", "severity": "medium", "confidence": 0.5,
                                "suggested_fix": "", "template": tpl, "support": n, "coverage": len(hits),
                                "examples": [msgs[i][1][:120] for i in members[:3]]}
        if label:
            labs = Counter(str(rows[i].get(label)) for i in hits if rows[i].get(label) not in (None, ""))
            if labs:
                top, cnt = labs.most_common(1)[0]
                sugg["labels"] = {label: top}
                sugg["precision"] = round(cnt / sum(labs.values()), 4)
        out.append(sugg)
    return out


