"""The level-2 LM on a GPU machine that has torch but not the rest of the stack, scored here.

Three modes, one folder (``out/gpu-bench`` by default, gitignored):

* ``build`` (here, the full stack, where the data is): the corpus split per repository by time,
  level 1, the NNGen index and the tokenizer; the LM's training examples, the held-out rows'
  examples and both prompt sets (level 1's prefix forced, and none), as token ids; the initial
  weights. Exactly what ``run_generation`` builds (same functions, same seed).
* ``train`` (the GPU machine: imports torch, numpy and the torch-only kforge modules ``lm``,
  ``backbones``, ``train``, ``device``, ``distributed``, ``prompts``; no polars, duckdb, mlflow,
  dagster or tokenizers): trains with the project's ``train()`` (device auto, batch and lr scaled
  to it, bf16/fp16 autocast on CUDA), decodes both prompt sets greedily as ``draft_messages`` does
  and writes ``drafts-<tag>.json`` (token ids, log-probabilities, perplexity, timings).
* ``score`` (here): decodes the ids with the tokenizer and scores every ``drafts-*.json`` with the
  project's metric code (``evaluate.score_messages``) against NNGen on the same rows: both given
  level 1's prefix, and neither; per repository and their mean; ratios and deltas to NNGen.

Only the folder travels to the GPU machine (with ``platform/kforge``), never the data::

    .venv/bin/python bench/generation_gpu.py build --source dpdk
    python bench/generation_gpu.py train --tag h200 --minutes 1          # on the GPU machine
    .venv/bin/python bench/generation_gpu.py score                       # back here: one JSON + a table
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))
OUT = ROOT / "out" / "gpu-bench"
SOURCES = ("demo", "dpdk", "libbpf", "bpftool", "btrfs-progs")


# -- build / score: the full stack ------------------------------------------------------------------

def _corpus(meta: dict):  # noqa: ANN202
    """The corpus of ``meta`` (the same rows for build and score), its splits and the NNGen index."""
    import tempfile

    from kforge.generation.corpus import build_corpus, load_from_parquet, split_frames
    from kforge.generation.retrieval import RetrievalIndex

    if meta["source"] == ["demo"]:
        sys.path.insert(0, str(ROOT / "bench"))
        from generation_cpu import demo_raw

        with tempfile.TemporaryDirectory() as tmp:
            raw = demo_raw(Path(tmp))[0]
    else:
        raw = load_from_parquet([Path(meta["data"]) / "kernel" / f"{s}.diffs.parquet" for s in meta["source"]])
    corpus, rep = build_corpus(raw, max_rows=meta["max_rows"])
    parts = split_frames(corpus)
    return corpus, rep, parts, RetrievalIndex().fit(parts["train"])


def _pack(rows: list[list[int]], n_prompt: list[int] | None = None) -> dict:
    import torch

    return {"ids": torch.tensor([t for r in rows for t in r], dtype=torch.int32),
            "lengths": torch.tensor([len(r) for r in rows], dtype=torch.int64),
            "n_prompt": torch.tensor(n_prompt if n_prompt is not None else [0] * len(rows), dtype=torch.int64)}


def build(args: argparse.Namespace) -> None:
    import torch
    from kforge.generation import evaluate
    from kforge.generation.corpus import held_out_rows
    from kforge.generation.level1 import Level1Config, Level1Model
    from kforge.generation.lm import TinyLMConfig
    from kforge.generation.pipeline import GenerationConfig, build_examples, make_backbone

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"source": args.source, "data": args.data, "max_rows": args.max_rows, "max_new_tokens": args.max_new_tokens}
    corpus, rep, parts, index = _corpus(meta)
    train_rows, val, test = parts["train"], parts["val"], parts["test"]
    cfg = GenerationConfig(lm=TinyLMConfig(vocab_size=args.vocab, d_model=args.d_model, n_layers=args.layers,
                                           n_heads=max(2, args.d_model // 64), max_len=args.max_len))
    level1 = Level1Model(Level1Config(n_estimators=args.level1_estimators)).fit(train_rows, val)
    backbone = make_backbone(cfg, train_rows)
    examples = build_examples(backbone, train_rows, index, self_in_index=True, patch_share=cfg.patch_task_share,
                              blank_subsystem_share=cfg.blank_subsystem_share, seed=cfg.train.seed)
    rows = held_out_rows(test, args.eval_rows)
    held = build_examples(backbone, rows, index, self_in_index=False)
    diffs = rows["diff"].to_list()
    sets = {"prefix": evaluate.message_prompts(backbone, level1, index, diffs, args.max_new_tokens, force_prefix=True),
            "noprefix": evaluate.message_prompts(backbone, level1, index, diffs, args.max_new_tokens, force_prefix=False)}
    backbone.save(out / "backbone")
    torch.save({"train": _pack([e.ids for e in examples], [e.n_prompt for e in examples]),
                "test": _pack([e.ids for e in held], [e.n_prompt for e in held]),
                **{f"prompts_{k}": _pack(p.ids) for k, p in sets.items()}}, out / "examples.pt")
    (out / "prompts.json").write_text(json.dumps(
        {k: {"heads": p.heads, "l1": p.l1, "neighbours": p.neighbours} for k, p in sets.items()}, default=float))
    meta |= {"corpus": rep.as_dict(), "lm": cfg.lm.as_dict(), "pad_id": backbone.pad_id, "eos_id": backbone.eos_id,
             "eval_shas": rows["sha"].to_list(), "eval_repos": rows["repo"].to_list(), "train_examples": len(examples),
             "n_params": sum(p.numel() for p in backbone.model.parameters()), "build_s": round(time.perf_counter() - t0, 1)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    print(json.dumps({"built": str(out), "train_examples": len(examples), "eval_rows": rows.height,
                      "repos": rep.repos, "build_s": meta["build_s"]}))


def score(args: argparse.Namespace) -> None:
    import polars as pl
    from kforge.generation import evaluate
    from kforge.generation.backbones import ScratchBackbone

    out = Path(args.out)
    meta = json.loads((out / "meta.json").read_text())
    saved = json.loads((out / "prompts.json").read_text())
    corpus, _, _, index = _corpus(meta)
    order = {s: i for i, s in enumerate(meta["eval_shas"])}
    rows = corpus.filter(pl.col("sha").is_in(meta["eval_shas"]) & (pl.col("split") == "test"))
    rows = rows.sort(pl.col("sha").replace_strict(order, return_dtype=pl.Int64))
    if rows["sha"].to_list() != meta["eval_shas"]:
        raise SystemExit("the corpus no longer yields the built rows: rebuild")
    decoder = ScratchBackbone.load(out / "backbone")   # the tokenizer (the weights are not used)
    report: dict = {"source": meta["source"], "eval_rows": rows.height, "n_params": meta["n_params"], "systems": {}}
    for f in sorted(out.glob("drafts-*.json")):
        got = json.loads(f.read_text())
        drafts = {k: evaluate.finish_messages(decoder, evaluate.MessagePrompts(
            [], saved[k]["heads"], saved[k]["l1"], saved[k]["neighbours"]), [(o[0], o[1]) for o in got[k]])
            for k in ("prefix", "noprefix")}
        res, _ = evaluate.score_messages(index, rows, drafts["prefix"], drafts["noprefix"])
        res["lm_perplexity"] = got["perplexity"]
        res |= evaluate.repo_means({f"lm_perplexity__{evaluate.repo_key(r)}": v for r, v in got["perplexity_by_repo"].items()})
        report["systems"][f.stem.removeprefix("drafts-")] = {"train": got["train"], "metrics": res}
    report["table"] = table(report)
    (out / "score.json").write_text(json.dumps(report, indent=1, default=float))
    print(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=1, default=float))
    print(report["table"])


def table(report: dict) -> str:
    """The issue's table: NNGen, then each trained system, both pairs, ratio and delta to NNGen on the same rows."""
    pairs = (("level 1's prefix", "lm", "nngen"), ("no prefix", "lm_noprefix", "nngen_noprefix"))
    lines = ["| run | pair | B-Norm | ROUGE-L | B-Norm / NNGen | ROUGE-L - NNGen | repo-mean B-Norm | test perplexity | "
             "training |", "|---|---|---|---|---|---|---|---|---|"]
    systems = list(report["systems"].items())
    if systems:   # NNGen does not depend on the LM: the same on every system's rows
        m = systems[0][1]["metrics"]
        lines += [f"| NNGen | {pair} | {m[f'{nn}_bleu_norm']:.1f} | {m[f'{nn}_rouge_l']:.1f} | 1.00 | +0.0 | "
                  f"{m[f'{nn}_bleu_norm__repo_mean']:.1f} | | |" for pair, _, nn in pairs]
    for tag, s in systems:
        m, t = s["metrics"], s["train"]
        lines += [f"| {tag} ({t['device']}, {t['precision']}) | {pair} | {m[f'{lm}_bleu_norm']:.1f} | "
                  f"{m[f'{lm}_rouge_l']:.1f} | {m[f'{lm}_bleu_norm'] / max(m[f'{nn}_bleu_norm'], 1e-9):.2f} | "
                  f"{m[f'{lm}_rouge_l'] - m[f'{nn}_rouge_l']:+.1f} | {m[f'{lm}_bleu_norm__repo_mean']:.1f} | "
                  f"{m['lm_perplexity']:.1f} | {t['steps']} steps of {t['batch_size']} ({t['epochs']:.2f} epochs), "
                  f"{t['seconds']:.0f} s, {t['tokens_per_s']:.0f} tok/s |" for pair, lm, nn in pairs]
    return "\n".join(lines)


# -- train: torch only ------------------------------------------------------------------------------

class _IdsOnly:
    """Stands in for the tokenizer on the GPU machine: decoding happens back where ``tokenizers`` is."""

    def __init__(self, pad_id: int, eos_id: int) -> None:
        self.pad_id, self.eos_id = pad_id, eos_id


def _unpack(d: dict) -> list[tuple[list[int], int]]:
    ids, out, at = d["ids"].tolist(), [], 0
    for n, p in zip(d["lengths"].tolist(), d["n_prompt"].tolist(), strict=True):
        out.append((ids[at:at + n], p))
        at += n
    return out


def train_mode(args: argparse.Namespace) -> None:
    import torch
    from kforge.generation import train as T
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.lm import TinyLM, TinyLMConfig
    from kforge.generation.prompts import Example

    out = Path(args.out)
    meta = json.loads((out / "meta.json").read_text())
    data = torch.load(out / "examples.pt", weights_only=True)
    cfg = TinyLMConfig(**meta["lm"])
    model = TinyLM(cfg)
    model.load_state_dict(torch.load(out / "backbone" / "model.pt", map_location="cpu", weights_only=True))
    bb = ScratchBackbone(_IdsOnly(meta["pad_id"], meta["eos_id"]), model, cfg)  # type: ignore[arg-type]
    examples = [Example(ids, n) for ids, n in _unpack(data["train"])]
    held = [Example(ids, n) for ids, n in _unpack(data["test"])]
    tc = T.TrainConfig(**T.budget_preset("nightly", steps=args.steps, budget_tokens=args.budget_tokens,
                                         epochs=args.epochs, max_minutes=args.minutes),
                       device=args.device, batch_size=args.batch_size, lr=args.lr, amp=not args.no_amp,
                       warmup=args.warmup, threads=args.threads).resolved(log=lambda s: print(s, file=sys.stderr))
    res = T.train(bb, examples, tc)
    print(f"trained {res.steps_done} steps in {res.seconds:.1f}s, loss {res.first_loss():.3f} -> {res.last_loss():.3f}, "
          f"{res.tokens_per_s:.0f} tok/s", file=sys.stderr)
    t = time.perf_counter()
    drafts = {}
    for k in ("prefix", "noprefix"):
        prompts = [ids for ids, _ in _unpack(data[f"prompts_{k}"])]
        drafts[k] = [list(o) for i in range(0, len(prompts), args.decode_batch)
                     for o in bb.generate(prompts[i:i + args.decode_batch], meta["max_new_tokens"])]
    decode_s = time.perf_counter() - t
    ppl = T.perplexity(bb, held, batch_size=args.decode_batch)
    by_repo = T.perplexity_by_group(bb, held, meta["eval_repos"], batch_size=args.decode_batch)
    info = {"device": tc.device, "gpu": torch.cuda.get_device_name(0) if tc.device == "cuda" else "",
            "torch": torch.__version__, "precision": res.precision, "batch_size": tc.batch_size, "lr": tc.lr,
            "steps": res.steps_done, "planned_steps": res.planned_steps, "tokens": res.tokens,
            "epochs": res.steps_done * tc.batch_size * tc.grad_accum / len(examples), "seconds": res.seconds,
            "tokens_per_s": res.tokens_per_s, "loss_first": res.first_loss(), "loss_last": res.last_loss(),
            "peak_mem_mb": res.peak_mem_mb, "decode_s": decode_s}
    (out / f"drafts-{args.tag}.json").write_text(json.dumps({**drafts, "perplexity": ppl, "perplexity_by_repo": by_repo,
                                                             "train": info}))
    print(json.dumps({"tag": args.tag, **info, "perplexity": ppl}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("build", help="here: examples, prompts, tokenizer and initial weights")
    b.add_argument("--source", nargs="+", choices=SOURCES, default=["dpdk"], help="one or more repositories (or demo)")
    b.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    b.add_argument("--max-rows", type=int, default=0, help="keep the most recent N cleaned commits (0 = all)")
    b.add_argument("--eval-rows", type=int, default=300, help="held-out rows decoded, shared evenly among repositories")
    b.add_argument("--max-new-tokens", type=int, default=32)
    b.add_argument("--d-model", type=int, default=192)
    b.add_argument("--layers", type=int, default=3)
    b.add_argument("--vocab", type=int, default=4096)
    b.add_argument("--max-len", type=int, default=384)
    b.add_argument("--level1-estimators", type=int, default=60)
    t = sub.add_parser("train", help="the GPU machine (torch only): train, decode, write drafts-<tag>.json")
    t.add_argument("--tag", default="gpu", help="names this system in the score (e.g. h200-1min, cpu-tiny)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--minutes", type=float, default=0.0, help="wall-clock budget (0: the nightly budget's 20 minutes "
                                                              "when no --steps/--budget-tokens/--epochs)")
    t.add_argument("--epochs", type=float, default=0.0)
    t.add_argument("--budget-tokens", type=int, default=0)
    t.add_argument("--steps", type=int, default=0)
    t.add_argument("--batch-size", type=int, default=0, help="0: 8 on cpu, 64 on cuda")
    t.add_argument("--lr", type=float, default=0.0, help="0: 3e-3 x sqrt(batch / 8)")
    t.add_argument("--warmup", type=int, default=20)
    t.add_argument("--no-amp", action="store_true")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--decode-batch", type=int, default=64)
    s = sub.add_parser("score", help="here: the project's metrics for every drafts-*.json, against NNGen")
    for p in (b, t, s):
        p.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    {"build": build, "train": train_mode, "score": score}[args.mode](args)


if __name__ == "__main__":
    main()
