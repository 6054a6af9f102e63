"""Rule suggestion: mine templates from errors no rule matched and propose rules.

The structured message of each unmatched error (crash line / ``Type: message``) goes through
:class:`~kforge.healing.templates.Drain`; each template with enough members becomes a candidate
rule whose pattern is the template as a regex. Coverage = rows of the known data the pattern
matches; precision = share of those rows carrying the candidate's majority label (when labels
exist). A human accepts a suggestion by copying it into a rule file.

Drain splits messages that differ in length or in a leading token (``KeyError: 'price'`` and
``KeyError: "None of [Index(['a', 'b'])] are in the [columns]"``) into separate templates, each
too small to become a rule. With an ``embed`` callable (``kforge.text.TextEncoder(...).embed``),
:func:`merge_templates` joins templates of the same kind whose sentence embeddings are close
(average linkage, cosine >= ``merge_threshold``) before support is counted; a merged suggestion's
pattern is the alternation of its templates' regexes. Example::

    suggest_rules(rows, RuleEngine.default(), embed=TextEncoder(paths).embed)
"""

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from kforge.errors import InputError
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


Embed = Callable[[list[str]], np.ndarray]
MERGE_THRESHOLD = 0.85   # chosen on the tune halves of JunoBench + syzkaller (docs/notes/issue-20-encoder-generation-rules.md)


def template_text(template: str) -> str:
    """What the encoder reads of a template: its tokens without the wildcards."""
    return " ".join(t for t in template.split() if t != WILDCARD)


def merge_templates(templates: dict[int, str], kinds: dict[int, str], embed: Embed,
                    threshold: float = MERGE_THRESHOLD) -> dict[int, int]:
    """Cluster id -> the id of the merged group it joins (its own id when nothing is close enough).

    Templates of one kind are clustered by average linkage on the cosine distance of their
    embeddings and cut at ``1 - threshold``: every merged group's templates are, on average, at
    least ``threshold`` similar. A group is named by its smallest cluster id."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if not 0.0 < threshold <= 1.0:
        raise InputError(f"merge_threshold must be in (0, 1], got {threshold}")
    out = {cid: cid for cid in templates}
    by_kind: dict[str, list[int]] = {}
    for cid in sorted(templates):
        by_kind.setdefault(kinds[cid], []).append(cid)
    for ids in by_kind.values():
        if len(ids) < 2:
            continue
        vecs = np.asarray(embed([template_text(templates[c]) for c in ids]), dtype=np.float64)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        dist = np.clip(1.0 - vecs @ vecs.T, 0.0, 2.0)
        condensed = dist[np.triu_indices(len(ids), 1)]
        labels = fcluster(linkage(condensed, method="average"), t=1.0 - threshold + 1e-9, criterion="distance")
        first: dict[int, int] = {}
        for cid, lab in zip(ids, labels, strict=True):
            out[cid] = first.setdefault(int(lab), cid)
    return out


def suggest_rules(rows: list[dict[str, Any]], engine: RuleEngine, label: str | None = None,
                  min_support: int = 2, max_rules: int = 20, embed: Embed | None = None,
                  merge_threshold: float = MERGE_THRESHOLD) -> list[dict[str, Any]]:
    """Candidate rules (as rule-file dicts plus ``coverage``/``precision``/``support``). With ``embed``,
    Drain templates of one kind whose embeddings are close are merged first (:func:`merge_templates`)."""
    msgs = [message_of(r) for r in rows]
    unmatched = [i for i, r in enumerate(rows) if msgs[i][1] and engine.match_row(r) is None]
    drain = Drain(sim_threshold=0.5)
    cluster_of = {i: drain.add(msgs[i][1]) for i in unmatched}
    templates = drain.templates()
    # a template is usable as a rule when it keeps at least two literal tokens
    usable = {cid: tpl for cid, tpl in templates.items() if sum(t != WILDCARD for t in tpl.split()) >= 2}
    kind_of_cluster = {c: msgs[i][0] for i, c in cluster_of.items()}
    group = {cid: cid for cid in templates}
    if embed is not None:
        group |= merge_templates(usable, {c: kind_of_cluster[c] for c in usable}, embed, merge_threshold)
    size = Counter(cluster_of.values())
    support = Counter(group[c] for c in cluster_of.values())
    out = []
    for gid, n in support.most_common():
        if n < min_support or len(out) >= max_rules:
            break
        tpls = [templates[c] for c, _ in sorted(((c, size[c]) for c in templates if group[c] == gid and c in usable),
                                                key=lambda t: (-t[1], t[0]))]
        if not tpls:
            continue
        pattern = template_regex(tpls[0]) if len(tpls) == 1 else "(?:" + "|".join(template_regex(t) for t in tpls) + ")"
        rx = re.compile(pattern)
        members = [i for i, c in cluster_of.items() if group[c] == gid]
        kind = Counter(msgs[i][0] for i in members).most_common(1)[0][0]
        hits = [i for i, (k, m) in enumerate(msgs) if k == kind and m and rx.search(m)]
        sugg: dict[str, Any] = {"id": f"suggested-{kind}-{gid}", "kind": kind,
                                "field": "crash_line" if kind == "kernel" else "error", "pattern": pattern,
                                "root_cause": "", "category": "suggested", "severity": "medium", "confidence": 0.5,
                                "suggested_fix": "", "template": tpls[0], "support": n, "coverage": len(hits),
                                "examples": [msgs[i][1][:120] for i in members[:3]]}
        if len(tpls) > 1:
            sugg["templates"] = tpls
        if label:
            labs = Counter(str(rows[i].get(label)) for i in hits if rows[i].get(label) not in (None, ""))
            if labs:
                top, cnt = labs.most_common(1)[0]
                sugg["labels"] = {label: top}
                sugg["precision"] = round(cnt / sum(labs.values()), 4)
        out.append(sugg)
    return out


