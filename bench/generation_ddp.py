"""Data-parallel (torchrun + DDP, gloo) training throughput of the level-2 LM: 1 vs N processes.

Usage::

    .venv/bin/python bench/generation_ddp.py                          # DPDK diffs from ../shared/data
    .venv/bin/python bench/generation_ddp.py --source demo --steps 20 # embedded demo repository
    .venv/bin/python bench/generation_ddp.py --nproc 1 2 --repeat 2 --d-model 192 --layers 3

The examples and the initial model are built once and saved; then, in the same run and with the
same global batch (``--batch-size`` x ``--grad-accum``), the same training is timed
(a) in-process without DDP (1 and 2 torch threads) and (b) under ``torchrun --standalone
--nproc_per_node=N`` with one thread per process. Tokens/s are global (all ranks); ratios are
against the 1-process torchrun run of the same round. Nothing is asserted: numbers for the notes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))


def _cfg(args: argparse.Namespace, threads: int, distributed: str):  # noqa: ANN202
    from kforge.generation.train import TrainConfig

    return TrainConfig(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr, warmup=5,
                       threads=threads, distributed=distributed, seed=7)


def _load(work: Path):  # noqa: ANN202
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.prompts import Example

    ex = [Example(ids, n) for ids, n in json.loads((work / "examples.json").read_text())]
    return ScratchBackbone.load(work / "bb"), ex


def _summary(res, **extra: object) -> dict[str, object]:  # noqa: ANN001
    return {**extra, "tokens": res.tokens, "seconds": round(res.seconds, 2), "tokens_per_s": round(res.tokens_per_s, 1),
            "steps_per_s": round(res.steps_done / res.seconds, 3), "loss_first": round(res.first_loss(), 4),
            "loss_last": round(res.history[-1]["loss"], 4), "peak_mem_mb_rank0": round(res.peak_mem_mb, 1)}


def worker(work: Path, args: argparse.Namespace) -> None:
    from kforge.generation import distributed
    from kforge.generation.train import train

    bb, ex = _load(work)
    res = train(bb, ex, _cfg(args, 1, "on"))
    if distributed.is_main():
        (work / "ddp.json").write_text(json.dumps(_summary(res, world_size=int(os.environ["WORLD_SIZE"]))))


def prepare(work: Path, args: argparse.Namespace) -> dict[str, object]:
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.corpus import build_corpus, load_from_parquet, split_frames
    from kforge.generation.lm import TinyLMConfig
    from kforge.generation.pipeline import build_examples
    from kforge.generation.retrieval import RetrievalIndex

    if args.source == "demo":
        sys.path.insert(0, str(ROOT / "bench"))
        from generation_cpu import demo_raw

        raw = demo_raw(work)[0]
    else:
        raw = load_from_parquet([Path(args.data) / "kernel" / f"{args.source}.diffs.parquet"])
    corpus, _ = build_corpus(raw, max_rows=args.max_rows)
    rows = split_frames(corpus)["train"]
    texts = (rows["subject"] + "\n\n" + rows["body"] + "\n" + rows["diff"].str.slice(0, 1500)).to_list()
    bb = ScratchBackbone.create(texts, TinyLMConfig(vocab_size=args.vocab, d_model=args.d_model, n_layers=args.layers,
                                                    n_heads=max(2, args.d_model // 64), max_len=args.max_len), seed=7)
    ex = build_examples(bb, rows, RetrievalIndex().fit(rows), self_in_index=True, patch_share=0.3)
    bb.save(work / "bb")
    (work / "examples.json").write_text(json.dumps([[e.ids, e.n_prompt] for e in ex]))
    return {"train_rows": rows.height, "examples": len(ex), "lm_params": bb.model.n_params()}


def run_torchrun(work: Path, nproc: int, argv: list[str]) -> dict[str, object]:
    (work / "ddp.json").unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", __file__,
           "--worker", str(work), *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "platform")}
    t = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if run.returncode:
        raise SystemExit(f"torchrun --nproc_per_node={nproc} failed:\n{run.stderr[-4000:]}")
    return {**json.loads((work / "ddp.json").read_text()), "wall_with_startup_s": round(time.perf_counter() - t, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--source", choices=("demo", "dpdk", "libbpf", "bpftool", "btrfs-progs"), default="dpdk")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--max-rows", type=int, default=3000)
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=1, help="rounds (torchrun runs alternate within a round)")
    ap.add_argument("--inprocess-threads", type=int, nargs="*", default=[1, 2],
                    help="torch threads of the in-process (no DDP) reference runs; none to skip them")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=8, help="global batch (all processes together)")
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--d-model", type=int, default=192)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--max-len", type=int, default=384)
    args = ap.parse_args()
    if args.worker:
        worker(Path(args.worker), args)
        return
    argv = sys.argv[1:]
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        info = prepare(work, args)
        out: dict[str, object] = {"source": args.source, **info, "prep_s": round(time.perf_counter() - t, 1),
                                  "cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                                  "global_batch": args.batch_size * args.grad_accum, "steps": args.steps, "rounds": []}
        from kforge.generation.train import train

        for r in range(args.repeat):
            rnd: dict[str, object] = {}
            for threads in args.inprocess_threads:
                bb, ex = _load(work)
                rnd[f"inprocess_threads{threads}"] = _summary(train(bb, ex, _cfg(args, threads, "off")))
                torch.set_num_threads(1)
            for n in (args.nproc if r % 2 == 0 else list(reversed(args.nproc))):
                rnd[f"torchrun_nproc{n}"] = run_torchrun(work, n, argv)
            base = rnd.get("torchrun_nproc1")
            if base:
                rnd["speedup_vs_nproc1"] = {k: round(v["tokens_per_s"] / base["tokens_per_s"], 3)  # type: ignore[index]
                                            for k, v in rnd.items() if isinstance(v, dict) and "tokens_per_s" in v}
            out["rounds"].append(rnd)  # type: ignore[union-attr]
            print(json.dumps(rnd), file=sys.stderr, flush=True)
        out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
