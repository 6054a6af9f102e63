"""The embedded LLM as level 2 vs NNGen, like for like, on the same held-out DPDK rows.

Usage::

    nice .venv/bin/python bench/generation_llm_level2.py --rows 30 --max-rows 4000

The corpus is built from ``kernel/dpdk.diffs.parquet`` with the project's corpus code and time split
(:func:`build_corpus`, ``--max-rows`` most recent rows kept); level 1 and the NNGen index are fitted on
the training split only (level 1 calibrated on the validation split); the scored rows are the earliest
``--rows`` of the test split (:func:`held_out_rows`). On those rows it scores, with
:func:`kforge.generation.evaluate.score_messages` (the metrics the TinyLM is scored with):

* ``lm_*`` vs ``nngen_*``: both given level 1's prefix (the LLM prompted with level 1's labels and the
  neighbours retrieved with the subsystem bonus, its subject given level 1's ``prefix:``);
* ``lm_noprefix_*`` vs ``nngen_noprefix_*``: neither (blank subsystem, neighbours without the bonus).

Here ``lm`` is the LLM (``--backend``, embedded SmolLM2-135M-Instruct by default). Prints one JSON
object (metrics, seconds per answer, fallbacks, the template hash, a few samples); asserts nothing.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from kforge.generation import metrics  # noqa: E402
from kforge.generation.corpus import build_corpus, held_out_rows, load_from_parquet, split_frames  # noqa: E402
from kforge.generation.evaluate import Drafts, score_messages  # noqa: E402
from kforge.generation.level1 import Level1Config, Level1Model  # noqa: E402
from kforge.generation.llm_level2 import DEFAULT_PARAMS, SUBJECT_TEMPLATE, LLMDrafts, draft  # noqa: E402
from kforge.generation.retrieval import RetrievalIndex  # noqa: E402
from kforge.llm import GenParams, LLMConfig, PromptTemplate, make_backend  # noqa: E402

# Prompt variants; with several, the one with the best ROUGE-L (prefix pair) on --rows validation rows is scored on test.
TEMPLATES = {
    "v1": SUBJECT_TEMPLATE,
    "v2": PromptTemplate(
        "commit_subject_l2_v2",
        system="You are a commit message writer. Reply with a single short subject line and nothing else.",
        user=("Diff (excerpt):\n{diff}\n\nSubsystem: {subsystem}. Change type: {change_type}. Size: {complexity}.\n"
              "Subjects of similar commits:\n{neighbours}\n\n"
              "The subject line for this diff, in the style of the similar subjects, under 70 characters:"),
    ),
}


def as_drafts(d: LLMDrafts, l1: list[dict], nbs: list[list[str]]) -> Drafts:
    """:class:`Drafts` for :func:`score_messages` (no log-probabilities: the confidence is not scored)."""
    return Drafts(d.subjects, d.subjects, [0.0] * len(d.subjects), l1, nbs)


def tinylm(train: pl.DataFrame, test: pl.DataFrame, level1: Level1Model, index: RetrievalIndex,
           tokens: int) -> dict[str, object]:
    """The project's TinyLM (the shipped defaults, a token budget) trained on ``train`` with the pipeline's own
    examples and scored on ``test`` like for like, with the same level 1 and index as the LLM."""
    from kforge.generation.evaluate import draft_messages, served_subjects
    from kforge.generation.pipeline import GenerationConfig, build_examples, make_backbone
    from kforge.generation.train import train as train_lm

    cfg = GenerationConfig.from_flat(budget_tokens=tokens, device="cpu")
    t = time.perf_counter()
    backbone = make_backbone(cfg, train)
    examples = build_examples(backbone, train, index, self_in_index=True,
                              blank_subsystem_share=cfg.blank_subsystem_share, seed=cfg.train.seed)
    hist = train_lm(backbone, examples, cfg.train)
    train_s = time.perf_counter() - t
    diffs = test["diff"].to_list()
    d = served_subjects(backbone, level1, index, diffs)
    bare = draft_messages(backbone, level1, index, diffs, force_prefix=False)
    res, _ = score_messages(index, test, d, bare)
    keep = ("lm_bleu_norm", "lm_rouge_l", "nngen_bleu_norm", "nngen_rouge_l", "lm_noprefix_bleu_norm",
            "lm_noprefix_rouge_l", "nngen_noprefix_bleu_norm", "nngen_noprefix_rouge_l")
    return {"metrics": {k: round(res[k], 2) for k in keep if k in res}, "train_s": round(train_s, 1),
            "steps": hist.steps_done, "tokens": hist.tokens, "loss_last": round(hist.last_loss(), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--rows", type=int, default=30, help="held-out test rows scored")
    ap.add_argument("--max-rows", type=int, default=4000, help="most recent corpus rows kept (0 = all)")
    ap.add_argument("--level1-estimators", type=int, default=60)
    ap.add_argument("--backend", default="embedded")
    ap.add_argument("--base-url", default="")
    ap.add_argument("--model", default="")
    ap.add_argument("--max-tokens", type=int, default=DEFAULT_PARAMS.max_tokens)
    ap.add_argument("--templates", default="v1", help=f"comma-separated, of {', '.join(TEMPLATES)}")
    ap.add_argument("--tinylm-tokens", type=int, default=0,
                    help="also train the project's TinyLM (from scratch, CPU) on the same training rows for this many "
                         "tokens, and score it on the same test rows (0: skip)")
    ap.add_argument("--skip-llm", action="store_true", help="score only the TinyLM and NNGen")
    args = ap.parse_args()

    t0 = time.perf_counter()
    raw = load_from_parquet([Path(args.data) / "kernel" / "dpdk.diffs.parquet"])
    corpus, _ = build_corpus(raw, max_rows=args.max_rows)
    parts = split_frames(corpus)
    train = parts["train"].filter(pl.col("source") == "commit")
    test = held_out_rows(parts["test"].filter(pl.col("source") == "commit"), args.rows)
    level1 = Level1Model(Level1Config(n_estimators=args.level1_estimators)).fit(train, parts["val"])
    index = RetrievalIndex().fit(train)
    backend = make_backend(LLMConfig.from_env(backend=args.backend, base_url=args.base_url, model=args.model))
    params = GenParams(max_tokens=args.max_tokens)
    out: dict[str, object] = {"train_rows": train.height, "val_rows": parts["val"].height, "rows": test.height,
                              "fit_s": round(time.perf_counter() - t0, 1)}
    names = args.templates.split(",")
    if len(names) > 1:   # chosen on validation rows (never on the test rows it is reported on)
        val = held_out_rows(parts["val"].filter(pl.col("source") == "commit"), args.rows)
        vd = val["diff"].to_list()
        vl1 = level1.predict(diffs=vd)
        vnbs = [[n.subject for n in nb] for nb in index.query_diffs(vd, [p["subsystem"] for p in vl1], n=2)]
        sel = {}
        for name in names:
            d = draft(backend, vl1, vnbs, vd, force_prefix=True, params=params, template=TEMPLATES[name])
            sel[name] = round(metrics.rouge_l(d.subjects, val["subject"].to_list()), 2)
            print(json.dumps({name: sel[name]}), file=sys.stderr, flush=True)
        out["val_selection_rouge_l"] = sel
        names = [max(sel, key=sel.__getitem__)]
    template = TEMPLATES[names[0]]
    out["template_chosen"] = names[0]
    diffs = test["diff"].to_list()
    l1 = level1.predict(diffs=diffs)
    blank = [{**p, "subsystem": ""} for p in l1]
    nbs_sub = [[n.subject for n in nb] for nb in index.query_diffs(diffs, [p["subsystem"] for p in l1], n=2)]
    nbs_bare = [[n.subject for n in nb] for nb in index.query_diffs(diffs, None, n=2)]
    print(json.dumps(out), file=sys.stderr, flush=True)
    if args.tinylm_tokens:
        out["tinylm"] = tinylm(train, test, level1, index, args.tinylm_tokens)
        print(json.dumps(out["tinylm"]), file=sys.stderr, flush=True)
    if args.skip_llm:
        print(json.dumps(out, indent=1))
        return
    t = time.perf_counter()
    with_p = draft(backend, l1, nbs_sub, diffs, force_prefix=True, params=params, template=template)
    out["prefix_pass_s"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out), file=sys.stderr, flush=True)
    t = time.perf_counter()
    bare = draft(backend, blank, nbs_bare, diffs, force_prefix=False, params=params, template=template)
    out["noprefix_pass_s"] = round(time.perf_counter() - t, 1)

    res, samples = score_messages(index, test, as_drafts(with_p, l1, nbs_sub), as_drafts(bare, l1, nbs_bare))
    res.pop("confidence_brier", None)
    prov = with_p.provenance + bare.provenance
    secs = [p["elapsed_s"] for p in prov]
    out |= {"metrics": {k: round(v, 2) for k, v in res.items() if "__" not in k},
            "seconds_per_answer": {"mean": round(float(np.mean(secs)), 2), "median": round(float(np.median(secs)), 2),
                                   "max": round(float(np.max(secs)), 2)},
            "fallbacks": {"prefix": sum(bool(p["fallback"]) for p in with_p.provenance),
                          "noprefix": sum(bool(p["fallback"]) for p in bare.provenance)},
            "provenance": {k: prov[0][k] for k in ("model", "backend", "template", "template_hash", "params")},
            "samples": samples.select("reference", "lm", "nngen", "lm_noprefix", "nngen_noprefix").head(8).to_dicts()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
