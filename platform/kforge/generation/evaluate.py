"""Held-out evaluation of level 2 against the NNGen baseline, on the same rows in the same run.

Messages are scored on the subject line (as NNGen and most commit-message work do): B-Norm,
B-Moses, ROUGE-L, METEOR (exact), subsystem-prefix accuracy and junk rate. Perplexity is over the
full target message.

Level 1 predicts the subsystem; the served LM starts its subject with it (``force_prefix``). So
that the LM is never credited with level 1's work, LM and NNGen are compared like for like on the
same rows, twice:

* ``lm_*`` vs ``nngen_*``: **both given level 1's prefix** (the LM's subject starts with it;
  NNGen's retrieved subject has its prefix replaced by it). This is the served system against the
  cheapest system that could be served instead (level 1 + NNGen), and what the release gate and
  the champion's re-score use (:func:`served_subjects`).
* ``lm_noprefix_*`` vs ``nngen_noprefix_*``: **neither given it**: the LM's prompt carries no
  level-1 subsystem (empty ``<sub>`` slot, neighbours retrieved without the subsystem bonus) and
  no forced head, and NNGen is the plain baseline. The LM is trained with that slot empty on a
  share of its examples (``GenerationConfig.blank_subsystem_share``), so this is the LM on its own,
  in distribution: reported, not gated.

``nngen_sub_*``: NNGen whose re-ranking favours level 1's subsystem (its own prefix kept).

Per repository (:func:`per_repo_metrics`): ``<system>_<metric>__<repo>`` for both pairs on each
repository's decoded rows, and ``<system>_<metric>__repo_mean``, their unweighted mean, so that a
small repository counts as much as DPDK.
Drafted patches are checked with ``git apply --check`` against the parent tree (through a
temporary index: nothing is checked out and nothing generated is executed) when the
repository is available.
"""

import re
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
from kforge.generation.train import perplexity, perplexity_by_group
from kforge.git.gitcmd import run_git


@dataclass
class Drafts:
    subjects: list[str]
    texts: list[str]
    mean_logprob: list[float]
    l1: list[dict[str, Any]]
    neighbours: list[list[str]] = field(default_factory=list)


@dataclass
class MessagePrompts:
    """What the LM is given to draft messages: token ids per diff (ending with level 1's ``prefix:``
    head when it is forced), that head as text, level 1's predictions and the retrieved neighbours."""

    ids: list[list[int]]
    heads: list[str]
    l1: list[dict[str, Any]]
    neighbours: list[list[str]]


def message_prompts(backbone: Backbone, level1: Level1Model, index: RetrievalIndex, diffs: list[str],
                    max_new_tokens: int = 32, n_ctx: int = 2, force_prefix: bool = True) -> MessagePrompts:
    """The prompts :func:`draft_messages` decodes (see there)."""
    l1 = level1.predict(diffs=diffs)
    cond = l1 if force_prefix else [{**p, "subsystem": ""} for p in l1]
    nbs = index.query_diffs(diffs, [p["subsystem"] for p in cond], n=n_ctx)
    budget = backbone.max_len - min(max_new_tokens, backbone.max_len // 2) - 8
    heads = [f"{p['subsystem']}:" if force_prefix and p["subsystem"] else "" for p in l1]
    ids = [prompts.message_prompt(backbone, d, cond[j], [n.subject for n in nbs[j]], budget)
           + (backbone.encode(heads[j]) if heads[j] else []) for j, d in enumerate(diffs)]
    return MessagePrompts(ids, heads, l1, [[n.subject for n in nb] for nb in nbs])


def finish_messages(backbone: Backbone, p: MessagePrompts, outputs: list[tuple[list[int], float]]) -> Drafts:
    """The drafts from the LM's continuations of ``p`` (token ids and mean log-probability per prompt)."""
    texts = [(h + backbone.decode(ids)).strip() for h, (ids, _) in zip(p.heads, outputs, strict=True)]
    return Drafts([t.split("\n", 1)[0].strip() for t in texts], texts, [lp for _, lp in outputs], p.l1, p.neighbours)


def draft_messages(backbone: Backbone, level1: Level1Model, index: RetrievalIndex, diffs: list[str],
                   max_new_tokens: int = 32, batch_size: int = 16, n_ctx: int = 2, force_prefix: bool = True) -> Drafts:
    """Subject + body per diff. With ``force_prefix`` the subject starts with level 1's subsystem
    (``"net/ice:"`` is appended to the prompt; the LM writes the rest). Without it the LM is given
    no level-1 subsystem at all: an empty ``<sub>`` slot and neighbours retrieved without the
    subsystem bonus (``Drafts.l1`` still holds level 1's predictions)."""
    p = message_prompts(backbone, level1, index, diffs, max_new_tokens, n_ctx, force_prefix)
    outputs: list[tuple[list[int], float]] = []
    for i in range(0, len(p.ids), batch_size):
        outputs += backbone.generate(p.ids[i:i + batch_size], max_new_tokens)
    return finish_messages(backbone, p, outputs)


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
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        r = run_git(repo, "read-tree", parent, env=env)
        if r.returncode != 0:
            return False
        r = run_git(repo, "apply", "--cached", "--check", "-", env=env,
                    input_bytes=(patch if patch.endswith("\n") else patch + "\n").encode())
        return r.returncode == 0


def acceptable(hyp: str, ref: str) -> bool:
    """What the confidence is calibrated to predict: not junk (no URL, trailer fragment, empty,
    cut-off or repeated text: :func:`metrics.junk_reason`), the right prefix, and ROUGE-L >= 30
    between the texts *after* the prefixes (the prefix alone no longer reaches 30 on short subjects)."""
    return (metrics.prefix_correct(hyp, ref)
            and metrics.sentence_rouge_l(metrics.subject_rest(hyp), metrics.subject_rest(ref)) >= 30.0)


def with_prefix(subject: str, prefix: str) -> str:
    """``subject`` starting with ``prefix:`` instead of its own prefix (unchanged when ``prefix``
    is empty): how NNGen's retrieved subject is given level 1's prefix, like the LM's."""
    return f"{prefix}: {metrics.subject_rest(subject)}".strip() if prefix else subject


def served_subjects(backbone: Backbone, level1: Level1Model, index: RetrievalIndex, diffs: list[str]) -> Drafts:
    """The subjects the served model drafts (level 1's prefix forced): what ``test_lm_*`` and the
    champion's re-score measure."""
    return draft_messages(backbone, level1, index, diffs, force_prefix=True)


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
                      examples: list[prompts.Example], calib: Any = None) -> tuple[dict[str, float], pl.DataFrame]:
    """LM vs NNGen on the same test rows, like for like: both given level 1's prefix (``lm_*`` vs
    ``nngen_*``, the gated pair), neither given it (``lm_noprefix_*`` vs ``nngen_noprefix_*``);
    plus the subsystem-aware NNGen (``nngen_sub_*``), and each per repository. ``examples``: the
    rows' message examples, for the perplexity (per repository too when they are one per row)."""
    diffs = test["diff"].to_list()
    d = served_subjects(backbone, level1, index, diffs)
    bare = draft_messages(backbone, level1, index, diffs, force_prefix=False)
    res, samples = score_messages(index, test, d, bare, calib)
    res["lm_perplexity"] = perplexity(backbone, examples)
    if len(examples) == test.height and "repo" in test.columns:
        res |= repo_means({f"lm_perplexity__{repo_key(r)}": v
                           for r, v in perplexity_by_group(backbone, examples, test["repo"].to_list()).items()})
    return res, samples


def score_messages(index: RetrievalIndex, test: pl.DataFrame, d: Drafts, bare: Drafts,
                   calib: Any = None) -> tuple[dict[str, float], pl.DataFrame]:
    """The metrics of :func:`evaluate_messages` for drafts already decoded (``d``: level 1's prefix
    forced, ``bare``: not), with NNGen retrieved here for the same rows."""
    diffs, refs = test["diff"].to_list(), test["subject"].to_list()
    l1_prefix = [p["subsystem"] or "" for p in d.l1]
    nngen_bare = index.nngen(diffs)
    nngen = [with_prefix(s, p) for s, p in zip(nngen_bare, l1_prefix, strict=True)]
    nngen_sub = index.nngen(diffs, l1_prefix)
    systems = {"lm": d.subjects, "nngen": nngen, "lm_noprefix": bare.subjects, "nngen_noprefix": nngen_bare,
               "nngen_sub": nngen_sub}
    res: dict[str, float] = {}
    for name, hyps in systems.items():
        res |= {f"{name}_{k}": v for k, v in metrics.all_metrics(hyps, refs).items()}
        res[f"{name}_acceptable_rate"] = float(np.mean([acceptable(h, r) for h, r in zip(hyps, refs, strict=True)]))
    res["rows"] = float(len(refs))
    ok = [acceptable(h, r) for h, r in zip(d.subjects, refs, strict=True)]
    conf = [confidence(calib, lp) for lp in d.mean_logprob]
    res["confidence_brier"] = float(np.mean([(c - o) ** 2 for c, o in zip(conf, ok, strict=True)])) if ok else float("nan")
    samples = pl.DataFrame({"sha": test["sha"], "reference": refs, "lm": d.subjects, "nngen": nngen,
                            "lm_noprefix": bare.subjects, "nngen_noprefix": nngen_bare,
                            "lm_junk": [metrics.junk_reason(h) for h in d.subjects], "predicted_subsystem": l1_prefix,
                            "confidence": conf, "mean_logprob": d.mean_logprob})
    if "repo" in test.columns:
        samples = samples.with_columns(test["repo"].alias("repo"))
        res |= per_repo_metrics(samples)
    return res, samples


REPO_SYSTEMS = ("lm", "nngen", "lm_noprefix", "nngen_noprefix")
REPO_METRICS = {"bleu_norm": metrics.bleu_norm, "rouge_l": metrics.rouge_l}
REPO_MEAN = "repo_mean"


def repo_key(repo: str) -> str:
    """A repository name as a metric-name suffix (letters, digits, ``_``, ``-`` and ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", repo)


def repo_means(per_repo: dict[str, float]) -> dict[str, float]:
    """``per_repo`` (``<name>__<repo>`` keys) plus ``<name>__repo_mean``: the unweighted mean over repositories."""
    groups: dict[str, list[float]] = {}
    for k, v in per_repo.items():
        groups.setdefault(k.rsplit("__", 1)[0], []).append(v)
    return per_repo | {f"{name}__{REPO_MEAN}": float(np.mean(vs)) for name, vs in groups.items()}


def per_repo_metrics(samples: pl.DataFrame) -> dict[str, float]:
    """B-Norm and ROUGE-L of both like-for-like pairs on each repository's rows of ``samples`` (a ``repo``
    and a ``reference`` column, one column per system), their row counts, and the means over repositories."""
    out: dict[str, float] = {}
    for (repo,), part in samples.group_by("repo", maintain_order=True):
        key, refs = repo_key(str(repo)), part["reference"].to_list()
        out[f"rows__{key}"] = float(part.height)
        for system in REPO_SYSTEMS:
            hyps = part[system].fill_null("").to_list()
            out |= {f"{system}_{name}__{key}": fn(hyps, refs) for name, fn in REPO_METRICS.items()}
    return repo_means({k: v for k, v in out.items() if not k.startswith("rows__")}) | {
        k: v for k, v in out.items() if k.startswith("rows__")}


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
        if hunks:   # 0 of 0 is no share: absent, not 0.0
            res["patch_hunks_anchored_share"] = kept / hunks
    return res
