"""A documented heuristic quality score for commits as training examples (0..1).

Points (sum, then halved for merges, reverts and automated sync/bot commits):

| criterion | points |
|---|---|
| subject 15-75 characters | 0.20 |
| a subsystem prefix (``net/ice: ...``) | 0.15 |
| a body with at least two non-trailer lines of rationale | 0.20 |
| Signed-off-by present | 0.10 |
| reviewed, acked or tested by someone | 0.15 |
| diff present, not truncated, 1-400 changed lines | 0.20 |

:func:`llm_quality` adds a language model's 1-5 score (seed 001) to rows above a heuristic floor.
"""

import re
from dataclasses import asdict
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.llm.base import Backend, GenParams, PromptTemplate, ask

BOT_SUBJECT = r"(?i)^(merge |sync:|automated|bump version|update .* from upstream)"
TRAILER_LINE = r"^[A-Za-z-]+-by:|^(Cc|Link|Fixes|Closes):"


def quality_score(df: pl.DataFrame) -> pl.Series:
    """Columns needed: subject, body, subject_prefix, signed_off_by, reviewed_by, acked_by,
    tested_by, lines_added, lines_deleted, truncated (bool), has_diff (bool)."""
    body_lines = (
        pl.col("body").fill_null("").str.split("\n").list.eval(
            pl.element().filter((pl.element().str.strip_chars().str.len_chars() > 0)
                                & ~pl.element().str.contains(TRAILER_LINE)))
        .list.len()
    )
    slen = pl.col("subject").str.len_chars()
    size = pl.col("lines_added").fill_null(0) + pl.col("lines_deleted").fill_null(0)
    score = (
        pl.when((slen >= 15) & (slen <= 75)).then(0.20).otherwise(0.0)
        + pl.when(pl.col("subject_prefix").fill_null("") != "").then(0.15).otherwise(0.0)
        + pl.when(body_lines >= 2).then(0.20).otherwise(0.0)
        + pl.when(pl.col("signed_off_by").list.len() > 0).then(0.10).otherwise(0.0)
        + pl.when((pl.col("reviewed_by").list.len() + pl.col("acked_by").list.len() + pl.col("tested_by").list.len()) > 0)
        .then(0.15).otherwise(0.0)
        + pl.when(pl.col("has_diff") & ~pl.col("truncated").fill_null(False) & (size >= 1) & (size <= 400))
        .then(0.20).otherwise(0.0)
    )
    penalised = pl.col("subject").str.contains(BOT_SUBJECT) | pl.col("subject").str.starts_with("Revert ")
    return df.select(pl.when(penalised).then(score * 0.5).otherwise(score).round(3).alias("quality")).to_series()


# -- the LLM's score (seed 001): 1-5 with a one-line reason, only for rows above a heuristic floor ------

LLM_SCORE_TEMPLATE = PromptTemplate(
    "export-quality-v1",
    system="You review Linux kernel and DPDK commits as training examples for a model that writes patches.",
    user=("Rate this training example from 1 (useless: unclear, trivial or broken) to 5 (excellent: a clear "
          "message that explains why, and a focused diff).\n\n"
          "### Instruction\n{instruction}\n### Input\n{input}\n### Output\n{output}\n\n"
          "Answer with exactly two lines:\nscore: <1-5>\nreason: <one short sentence>"))
_SCORE_PATTERNS = (r"(?i)score\D{0,12}?([1-5])(?!\d)", r"(?<![\d.])([1-5])\s*(?:/\s*5|out of 5)", r"^\s*([1-5])(?![\d.])")
PROMPT_CHARS = 1200   # each of input and output is cut to this many characters (small models, 2 cores)


def parse_llm_score(text: str) -> tuple[int | None, str]:
    """``score: N`` (or ``N/5``, or a leading digit) and the ``reason:`` line (else the text's first line)."""
    score = None
    for pat in _SCORE_PATTERNS:
        m = re.search(pat, text, flags=re.M)
        if m:
            score = int(m.group(1))
            break
    reason = re.search(r"(?im)^\s*reason\s*[:=-]\s*(.+)$", text)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not re.match(r"(?i)\s*score", ln)), "")
    return score, (reason.group(1).strip() if reason else first)[:300]


def llm_quality(rows: pl.DataFrame, backend: Backend, floor: float, params: GenParams | None = None,
                prompt_chars: int = PROMPT_CHARS) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Add ``llm_score`` (1-5, null when not scored or not parseable) and ``llm_reason`` to export rows
    (``instruction``/``input``/``output``/``quality``); only rows with ``quality >= floor`` are asked.
    Input and output are cut to ``prompt_chars`` characters each. Returns the rows and the provenance
    of the scores (model, template hash, parameters, prompt cut, counts)."""
    if not 0.0 <= floor <= 1.0:
        raise InputError(f"--llm-floor must be within 0..1, got {floor}")
    params = params or GenParams(max_tokens=48)
    scores: list[int | None] = []
    reasons: list[str | None] = []
    last = None
    for r in rows.iter_rows(named=True):
        if r["quality"] < floor:
            scores.append(None)
            reasons.append(None)
            continue
        last = ask(backend, LLM_SCORE_TEMPLATE, {"instruction": r["instruction"], "input": r["input"][:prompt_chars],
                                                 "output": r["output"][:prompt_chars]}, params)
        s, why = parse_llm_score(last.text)
        scores.append(s)
        reasons.append(why if s is not None else f"unparsed answer: {last.text[:120]}")
    out = rows.with_columns(pl.Series("llm_score", scores, dtype=pl.Int8), pl.Series("llm_reason", reasons, dtype=pl.String))
    asked = int((rows["quality"] >= floor).sum()) if rows.height else 0
    prov = {"backend": backend.name, "model": last.model if last else backend.model, "template": LLM_SCORE_TEMPLATE.name,
            "template_hash": LLM_SCORE_TEMPLATE.hash, "params": asdict(params), "prompt_chars": prompt_chars, "floor": floor, "asked": asked,
            "scored": int(out["llm_score"].is_not_null().sum()) if rows.height else 0}
    return out, prov
