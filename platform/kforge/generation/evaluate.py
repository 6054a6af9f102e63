"""Held-out evaluation of level 2 against the NNGen baseline, on the same rows in the same run.

Messages are scored on the subject line (as NNGen and most commit-message work do): B-Norm,
B-Moses, ROUGE-L and subsystem-prefix accuracy. Perplexity is over the full target message.
Drafted patches are checked with ``git apply --check`` against the parent tree (through a
temporary index: nothing is checked out and nothing generated is executed) when the
repository is available.
"""

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kforge.generation import metrics, prompts
from kforge.generation.backbones import Backbone
from kforge.generation.level1 import Level1Model
from kforge.generation.patch_repair import repair_patch, tree_reader
from kforge.generation.retrieval import RetrievalIndex
from kforge.generation.train import perplexity


@dataclass
class Drafts:
    subjects: list[str]
    texts: list[str]
    mean_logprob: list[float]
    l1: list[dict[str, Any]]
    neighbours: list[list[str]] = field(default_factory=list)


def draft_messages(backbone: Backbone, level1: Level1Model, index: RetrievalIndex, diffs: list[str],
                   max_new_tokens: int = 32, batch_size: int = 16, n_ctx: int = 2, force_prefix: bool = True) -> Drafts:
    """Subject + body per diff. With ``force_prefix`` the subject starts with level 1's subsystem
    (``"net/ice:"`` is appended to the prompt; the LM writes the rest)."""
    l1 = level1.predict(diffs=diffs)
    nbs = index.query_diffs(diffs, [p["subsystem"] for p in l1], n=n_ctx)
    subs, texts, lps = [], [], []
    budget = backbone.max_len - min(max_new_tokens, backbone.max_len // 2) - 8
    heads = [f"{p['subsystem']}:" if force_prefix and p["subsystem"] else "" for p in l1]
    for i in range(0, len(diffs), batch_size):
        batch = [prompts.message_prompt(backbone, d, l1[j], [n.subject for n in nbs[j]], budget)
                 + (backbone.encode(heads[j]) if heads[j] else [])
                 for j, d in enumerate(diffs[i:i + batch_size], start=i)]
        for j, (ids, lp) in enumerate(backbone.generate(batch, max_new_tokens), start=i):
            text = (heads[j] + backbone.decode(ids)).strip()
            texts.append(text)
            subs.append(text.split("\n", 1)[0].strip())
            lps.append(lp)
    return Drafts(subs, texts, lps, l1, [[n.subject for n in nb] for nb in nbs])


def draft_patches(backbone: Backbone, level1: Level1Model, index: RetrievalIndex, issues: list[str],
                  subsystems: list[str | None] | None = None, max_new_tokens: int = 160, batch_size: int = 8) -> Drafts:
    l1 = level1.predict(issues=issues)
    for i, s in enumerate(subsystems or []):
        if s:
            l1[i]["subsystem"], l1[i]["subsystem_conf"] = s, 1.0
    nbs = index.query_issues(issues, [p["subsystem"] for p in l1], n=1)
    texts, lps = [], []
    budget = backbone.max_len - min(max_new_tokens, backbone.max_len // 2)
    for i in range(0, len(issues), batch_size):
        batch = [prompts.patch_prompt(backbone, t, l1[j], (nbs[j][0].subject, nbs[j][0].diff) if nbs[j] else None, budget)
                 for j, t in enumerate(issues[i:i + batch_size], start=i)]
        for ids, lp in backbone.generate(batch, max_new_tokens, no_repeat_ngram=0):  # diffs repeat paths/context
            texts.append(backbone.decode(ids).strip())
            lps.append(lp)
    return Drafts([t.split("\n", 1)[0] for t in texts], texts, lps, l1, [[n.subject for n in nb] for nb in nbs])


def patch_part(text: str) -> str:
    _, sep, rest = text.partition("\n---\n")
    return rest if sep else ""


def git_apply_check(repo: Path, parent: str, patch: str) -> bool:
    """Would ``patch`` apply to ``parent``'s tree? Uses a throwaway index; executes nothing."""
    if not patch.strip():
        return False
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        r = subprocess.run(["git", "-C", str(repo), "read-tree", parent], env=env, capture_output=True, check=False)
        if r.returncode != 0:
            return False
        r = subprocess.run(["git", "-C", str(repo), "apply", "--cached", "--check", "-"], env=env,
                           input=(patch if patch.endswith("\n") else patch + "\n").encode(), capture_output=True, check=False)
        return r.returncode == 0


def acceptable(hyp: str, ref: str) -> bool:
    """What the confidence is calibrated to predict: right prefix and ROUGE-L >= 30."""
    return metrics.prefix_correct(hyp, ref) and metrics.sentence_rouge_l(hyp, ref) >= 30.0


def fit_confidence(mean_logprob: list[float], ok: list[bool]) -> Any:
    from sklearn.isotonic import IsotonicRegression

    if len(ok) < 5 or len(set(ok)) < 2:
        return None
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(mean_logprob, np.asarray(ok, dtype=float))


def confidence(calib: Any, mean_logprob: float) -> float:
    if calib is None:
        return float(np.exp(mean_logprob))  # uncalibrated fallback: geometric-mean token probability
    return float(calib.predict([mean_logprob])[0])


def evaluate_messages(backbone: Backbone, level1: Level1Model, index: RetrievalIndex, test: pl.DataFrame,
                      examples: list[prompts.Example], calib: Any = None, max_new_tokens: int = 32) -> tuple[dict[str, float], pl.DataFrame]:
    """LM vs NNGen (plain and subsystem-aware) on the same test rows."""
    diffs, refs = test["diff"].to_list(), test["subject"].to_list()
    d = draft_messages(backbone, level1, index, diffs, max_new_tokens)
    nngen = index.nngen(diffs)
    nngen_sub = index.nngen(diffs, [p["subsystem"] for p in d.l1])
    res: dict[str, float] = {f"lm_{k}": v for k, v in metrics.all_metrics(d.subjects, refs).items()}
    res |= {f"nngen_{k}": v for k, v in metrics.all_metrics(nngen, refs).items()}
    res |= {f"nngen_sub_{k}": v for k, v in metrics.all_metrics(nngen_sub, refs).items()}
    res["lm_perplexity"] = perplexity(backbone, examples)
    res["rows"] = float(len(refs))
    ok = [acceptable(h, r) for h, r in zip(d.subjects, refs, strict=True)]
    conf = [confidence(calib, lp) for lp in d.mean_logprob]
    res["lm_acceptable_rate"] = float(np.mean(ok)) if ok else 0.0
    res["confidence_brier"] = float(np.mean([(c - o) ** 2 for c, o in zip(conf, ok, strict=True)])) if ok else float("nan")
    samples = pl.DataFrame({"sha": test["sha"], "reference": refs, "lm": d.subjects, "nngen": nngen,
                            "predicted_subsystem": [p["subsystem"] for p in d.l1], "confidence": conf,
                            "mean_logprob": d.mean_logprob})
    return res, samples


def evaluate_patches(backbone: Backbone, level1: Level1Model, index: RetrievalIndex, test: pl.DataFrame,
                     repo_paths: dict[str, Path]) -> dict[str, float]:
    rows = test.filter(pl.col("issue").str.len_chars() > 20)
    if rows.height == 0:
        return {"patch_rows": 0.0}
    d = draft_patches(backbone, level1, index, rows["issue"].to_list())
    res = {"patch_rows": float(rows.height),
           "patch_prefix_acc": metrics.prefix_accuracy(d.subjects, rows["subject"].to_list()),
           "patch_rouge_l": metrics.rouge_l(d.subjects, rows["subject"].to_list())}
    checked, applied, repaired_ok, hunks, kept = 0, 0, 0, 0, 0
    for r, text in zip(rows.iter_rows(named=True), d.texts, strict=True):
        path = repo_paths.get(r["repo"])
        if path is None or not r.get("parent"):
            continue
        checked += 1
        draft = patch_part(text)
        applied += git_apply_check(path, r["parent"], draft)
        fixed, st = repair_patch(draft, tree_reader(path, r["parent"]))
        repaired_ok += git_apply_check(path, r["parent"], fixed)
        hunks, kept = hunks + st.hunks, kept + st.kept
    res["patch_apply_checked"] = float(checked)
    if checked:   # as drafted, and after anchoring the hunks in the parent tree (unanchorable ones dropped)
        res["patch_apply_share"] = applied / checked
        res["patch_apply_share_repaired"] = repaired_ok / checked
        res["patch_hunks_drafted"] = float(hunks)
        res["patch_hunks_anchored_share"] = kept / hunks if hunks else 0.0
    return res
