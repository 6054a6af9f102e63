"""NNGen retrieval: bag of words vs pretrained embeddings vs both, on the same held-out rows.

Usage::

    .venv/bin/python bench/generation_retrieval.py --source dpdk                 # DPDK's val and test splits
    .venv/bin/python bench/generation_retrieval.py --source all --no-level1      # the four repositories
    .venv/bin/python bench/generation_retrieval.py --source dpdk --view lines --modes embedding --splits val

For each retrieval mode (:class:`kforge.generation.retrieval.RetrievalIndex`), fitted on the training
split only, it scores on the validation split (where the default is chosen) and on the test split
(reported): NNGen without a prefix (``nngen_noprefix``), NNGen given level 1's predicted prefix
(``nngen``, as :func:`kforge.generation.evaluate.with_prefix` does), the subsystem-aware NNGen
(``nngen_sub``), and the LM's context: the best of the two neighbour subjects the prompt gets
(``ctx2_rouge_l``: mean over rows of the higher sentence ROUGE-L), and for each mode after ``bow`` its
per-row difference to ``bow`` (sentence B-Norm; ctx2 ROUGE-L) with a 95% paired-bootstrap interval. B-Norm and ROUGE-L as
:mod:`kforge.generation.metrics` computes them; per repository and their unweighted mean with
``--source all``. Embeddings are cached by content in ``--home``'s warehouse, so a rerun does
not re-embed. Prints one JSON object; nothing is asserted.
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
from kforge.generation import metrics, retrieval  # noqa: E402
from kforge.generation.corpus import build_corpus, load_from_parquet, split_frames  # noqa: E402
from kforge.generation.evaluate import with_prefix  # noqa: E402
from kforge.generation.retrieval import RetrievalIndex  # noqa: E402

REPOS = ("dpdk", "libbpf", "bpftool", "btrfs-progs")


def paired_ci(diff: np.ndarray, n: int = 2000, seed: int = 7) -> list[float]:
    """Mean of per-row differences and its 95% paired-bootstrap interval."""
    rnd = np.random.default_rng(seed)
    means = diff[rnd.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    return [round(float(diff.mean()), 3), round(float(np.quantile(means, 0.025)), 3),
            round(float(np.quantile(means, 0.975)), 3)]


def score(index: RetrievalIndex, rows: pl.DataFrame, l1_prefix: list[str] | None,
          per_row: dict[str, np.ndarray]) -> dict[str, float]:
    """The metrics of each NNGen variant on ``rows``; ``per_row`` gets each one's sentence B-Norm per row."""
    diffs, refs = rows["diff"].to_list(), rows["subject"].to_list()
    nbs = index.query_diffs(diffs, n=2)
    bare = [nb[0].subject if nb else "" for nb in nbs]
    systems = {"nngen_noprefix": bare}
    if l1_prefix is not None:
        systems["nngen"] = [with_prefix(s, p) for s, p in zip(bare, l1_prefix, strict=True)]
        systems["nngen_sub"] = index.nngen(diffs, l1_prefix)
    out: dict[str, float] = {"rows": float(len(refs))}
    repos = rows["repo"].to_list()
    for name, hyps in systems.items():
        per_row[name] = np.asarray([metrics.sentence_bleu_norm(h, r) for h, r in zip(hyps, refs, strict=True)])
        out[f"{name}_bleu_norm"] = metrics.bleu_norm(hyps, refs)
        out[f"{name}_rouge_l"] = metrics.rouge_l(hyps, refs)
        if len(set(repos)) > 1:
            per = []
            for repo in sorted(set(repos)):
                h = [x for x, r in zip(hyps, repos, strict=True) if r == repo]
                g = [x for x, r in zip(refs, repos, strict=True) if r == repo]
                per.append((metrics.bleu_norm(h, g), metrics.rouge_l(h, g)))
                out[f"{name}_bleu_norm__{repo}"], out[f"{name}_rouge_l__{repo}"] = per[-1]
            out[f"{name}_bleu_norm__repo_mean"] = float(np.mean([p[0] for p in per]))
            out[f"{name}_rouge_l__repo_mean"] = float(np.mean([p[1] for p in per]))
    per_row["ctx2_rouge_l"] = np.asarray([max((metrics.sentence_rouge_l(n.subject, r) for n in nb), default=0.0)
                                          for nb, r in zip(nbs, refs, strict=True)])
    out["ctx2_rouge_l"] = float(per_row["ctx2_rouge_l"].mean())
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", choices=(*REPOS, "all"), default="dpdk")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--home", default="/tmp/kforge-bench-encoder", help="KFORGE_HOME for the model and the cache")
    ap.add_argument("--modes", default="bow,embedding,hybrid")
    ap.add_argument("--splits", default="val,test")
    ap.add_argument("--view", choices=("words", "lines"), default="words",
                    help="what the encoder reads: distinct changed-line words (shipped) or the raw changed lines")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-rows", type=int, default=0, help="most recent corpus rows kept (0 = all)")
    ap.add_argument("--per-repo-rows", type=int, default=0,
                    help="most recent raw rows kept per repository before cleaning (0 = all); keeps every repository")
    ap.add_argument("--no-level1", action="store_true", help="skip level 1 (no nngen / nngen_sub)")
    ap.add_argument("--level1-estimators", type=int, default=60)
    args = ap.parse_args()

    from kforge.config import Paths
    from kforge.storage import Warehouse
    from kforge.text import TextEncoder, use_encoder

    if args.view == "lines":   # the variant: the changed lines as they are (the encoder truncates them)
        retrieval.embedding_doc = lambda d: retrieval._diff_doc(d)[:2000]
    names = REPOS if args.source == "all" else (args.source,)
    raw = load_from_parquet([Path(args.data) / "kernel" / f"{n}.diffs.parquet" for n in names])
    if args.per_repo_rows:
        raw = raw.sort("repo", "author_date").group_by("repo", maintain_order=True).tail(args.per_repo_rows)
    corpus, _ = build_corpus(raw, max_rows=args.max_rows)
    parts = split_frames(corpus)
    train = parts["train"].filter(pl.col("source") == "commit")
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    wh = Warehouse(home / "bench.duckdb")
    enc = TextEncoder(Paths.of(home), wh, batch_size=args.batch_size, max_length=args.max_length)
    use_encoder(enc).__enter__()   # retrieval embeds through the process's encoder for the whole run
    out: dict[str, object] = {"source": args.source, "view": args.view, "max_length": args.max_length,
                              "max_rows": args.max_rows, "per_repo_rows": args.per_repo_rows, "train_rows": train.height, **{f"{s}_rows": parts[s].height for s in ("val", "test")}}
    l1: dict[str, list[str]] = {}
    if not args.no_level1:
        from kforge.generation.level1 import Level1Config, Level1Model

        t = time.perf_counter()
        level1 = Level1Model(Level1Config(n_estimators=args.level1_estimators)).fit(train, parts["val"])
        for s in args.splits.split(","):
            l1[s] = [p["subsystem"] or "" for p in level1.predict(diffs=parts[s]["diff"].to_list())]
        out["level1_s"] = round(time.perf_counter() - t, 1)
    base: dict[str, dict[str, np.ndarray]] = {}
    for mode in args.modes.split(","):
        t = time.perf_counter()
        before = enc.computed
        index = RetrievalIndex(mode=mode).fit(train)
        res: dict[str, object] = {"fit_s": round(time.perf_counter() - t, 1)}
        for s in args.splits.split(","):
            t = time.perf_counter()
            rows: dict[str, np.ndarray] = {}
            res[s] = score(index, parts[s], l1.get(s), rows)
            if mode == "bow":
                base[s] = rows
            elif s in base:   # paired with bow on the same rows: mean difference [2.5%, 97.5%]
                res[f"{s}_minus_bow"] = {k: paired_ci(v - base[s][k]) for k, v in rows.items()}
            res[f"{s}_query_s"] = round(time.perf_counter() - t, 1)
        res["texts_embedded"] = enc.computed - before
        out[mode] = res
        print(json.dumps({mode: res}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
