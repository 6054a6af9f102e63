"""Does the LLM's export quality score (seed 001) track observable outcomes better than the heuristic?

Sample: ``--n`` non-merge DPDK commits (with diffs) from ../shared/data, authored at least
``--min-age-days`` before the snapshot (so a later fix or revert had time to happen), drawn with
``--seed``. Neither the heuristic nor the prompt was tuned on them. Outcomes: later fixed (a Fixes:
tag points at it), reverted, and review trailers (Reviewed/Acked/Tested-by; the heuristic itself
awards points for them, so that row is circular for the heuristic). Reports Spearman and AUC of
both scores against each outcome, on all rows and on the rows above the floor. Prints JSON.

    .venv/bin/python bench/llm_score.py --n 200 [--backend openai --base-url URL --model M]
"""

import argparse
import json
import time

import numpy as np
import polars as pl
from kforge.commits.quality import llm_quality, quality_score
from kforge.config import resolve_data_dir
from kforge.llm.base import GenParams, LLMConfig, make_backend


def sample(n: int, seed: int, min_age_days: float) -> pl.DataFrame:
    root = resolve_data_dir(None) or resolve_data_dir("../shared/data")
    kernel = root / "kernel"
    commits = pl.read_parquet(kernel / "dpdk.commits.parquet")
    diffs = pl.read_parquet(kernel / "dpdk.diffs.parquet").select("sha", "diff", "truncated")
    newest = commits["committer_ts"].max()
    df = (commits.filter((pl.col("parents").list.len() == 1) & (pl.col("author_ts") <= newest - min_age_days * 86400))
          .join(diffs, on="sha", how="inner").with_columns(pl.lit(True).alias("has_diff")))
    df = df.sample(n=min(n, df.height), seed=seed, shuffle=True)
    msg = pl.concat_str([pl.col("subject"), pl.lit("\n\n"), pl.col("body").fill_null("")]).str.strip_chars()
    return df.with_columns(quality_score(df), msg.alias("input"), pl.col("diff").alias("output"),
                           pl.lit("Write the patch (unified diff) for this commit message.").alias("instruction"),
                           (pl.col("reviewed_by").list.len() + pl.col("acked_by").list.len()
                            + pl.col("tested_by").list.len() > 0).alias("reviewed"),
                           (pl.col("fixed_later") | pl.col("reverted")).alias("fixed_or_reverted"))


def _auc(score: np.ndarray, y: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def correlations(df: pl.DataFrame, col: str) -> dict[str, dict[str, float | None]]:
    """Spearman and AUC of ``col`` against each outcome. For fixed/reverted the AUC is of the score
    predicting a *good* outcome (not fixed, not reverted): above 0.5 means higher score, fewer fixes."""
    sub = df.filter(pl.col(col).is_not_null())
    s = sub[col].cast(pl.Float64).to_numpy()
    out: dict[str, dict[str, float | None]] = {}
    for outcome, good in (("fixed_later", False), ("reverted", False), ("fixed_or_reverted", False), ("reviewed", True)):
        y = sub[outcome].to_numpy().astype(int)
        target = y if good else 1 - y
        out[outcome] = {"n": float(len(y)), "positives": float(y.sum()), "auc_good": _auc(s, target),
                        "spearman_good": _spearman(s, target.astype(float))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-age-days", type=float, default=365.0)
    ap.add_argument("--floor", type=float, default=0.5)
    ap.add_argument("--backend", default="embedded")
    ap.add_argument("--base-url", default="")
    ap.add_argument("--model", default="")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--prompt-chars", type=int, default=1200)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    df = sample(a.n, a.seed, a.min_age_days)
    backend = make_backend(LLMConfig.from_env(backend=a.backend, base_url=a.base_url, model=a.model))
    t0 = time.perf_counter()
    scored, prov = llm_quality(df, backend, floor=0.0, params=GenParams(max_tokens=a.max_tokens),
                               prompt_chars=a.prompt_chars)
    secs = time.perf_counter() - t0
    above = scored.filter(pl.col("quality") >= a.floor)
    res = {"provenance": prov, "rows": df.height, "seconds": round(secs, 1), "parsed": int(scored["llm_score"].is_not_null().sum()),
           "llm_score_counts": {str(k): int(v) for k, v in scored["llm_score"].value_counts().iter_rows()},
           "outcome_rates": {c: float(df[c].mean()) for c in ("fixed_later", "reverted", "reviewed")},
           "all_rows": {"heuristic": correlations(scored, "quality"), "llm": correlations(scored, "llm_score")},
           f"above_floor_{a.floor}": {"rows": above.height, "heuristic": correlations(above, "quality"),
                                      "llm": correlations(above, "llm_score")},
           "reasons_sample": scored["llm_reason"].head(8).to_list()}
    text = json.dumps(res, indent=1, default=float)
    if a.out:
        scored.select("sha", "quality", "llm_score", "llm_reason", "fixed_later", "reverted", "reviewed").write_ndjson(a.out)
    print(text)


if __name__ == "__main__":
    main()
