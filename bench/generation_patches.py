"""Patches that apply (issue 19): the focused patch task (``kforge.generation.patch_task``) on the
demo repository, trained on CPU and scored by ``git apply --check`` on each held-out commit's parent.

The demo repository is generated (``kforge demo-repo``), ingested and split by time as the platform
does; the task's training rows come from the train split only, its scored rows from the test split.
Next to the LM, three reference drafts on the same rows show what the apply share does and does
not measure: the gold hunk (the ceiling), the nearest training hunk of the same file (a retrieval
baseline) and a trivial draft (the window's last three lines as context plus one added line,
which applies after repair while changing nothing that was asked for).

    .venv/bin/python bench/generation_patches.py --out /tmp/h6/patches --minutes 6
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))


def _corpus(repo: Path, work: Path):  # noqa: ANN202
    from kforge.commits.diffs_table import collect_diffs
    from kforge.generation.corpus import build_corpus, load_from_warehouse, split_frames
    from kforge.git.demo_repo import generate_demo_repo
    from kforge.git.ingest import ingest_repository
    from kforge.storage import Warehouse

    if not repo.exists():
        generate_demo_repo(repo, n_commits=1200, seed=7)
    wh = Warehouse(work / "w.duckdb")
    ingest_repository(repo, wh, name="demo")
    frame, _ = collect_diffs(wh, None, 5000, 65536)
    wh.replace("commit_diffs", frame)
    corpus, rep = build_corpus(load_from_warehouse(wh))
    return split_frames(corpus), rep


def _references(train: list, test: list) -> dict[str, list[str]]:
    """Drafts that are not the LM's, on the same rows."""
    by_path: dict[str, str] = {}
    for it in train:                                   # the latest training hunk of each file
        by_path[it.hunk.path] = it.hunk.text
    trivial = []
    for it in test:
        ctx = it.window[-3:]
        trivial.append("@@ -1,3 +1,4 @@\n" + "\n".join(" " + c for c in ctx) + "\n+\t/* nothing asked for */")
    return {"gold hunk": [it.hunk.text for it in test],
            "nearest training hunk (same file)": [by_path.get(it.hunk.path, "") for it in test],
            "trivial (3 window lines + 1 added)": trivial}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "out" / "patch-bench"))
    ap.add_argument("--repo", default="", help="demo repository (generated there when absent; default: a temp dir)")
    ap.add_argument("--minutes", type=float, default=6.0, help="wall-clock training budget (fitted schedule)")
    ap.add_argument("--epochs", type=float, default=0.0)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=0, help="0: d_model / 64 (at least 2)")
    ap.add_argument("--draws", type=int, default=1, help="windows per training commit, placed differently")
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--max-len", type=int, default=384)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--max-hunk-lines", type=int, default=20)
    ap.add_argument("--eval-rows", type=int, default=60)
    args = ap.parse_args()

    from kforge.generation import patch_task as P
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.lm import TinyLMConfig
    from kforge.generation.train import TrainConfig, budget_preset, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(args.repo) if args.repo else Path(tmp) / "demo"
        t0 = time.perf_counter()
        parts, rep = _corpus(repo, Path(tmp))
        paths = {"demo": repo}
        kw = {"window": args.window, "max_hunk_lines": args.max_hunk_lines}
        train_items = P.task_items(parts["train"], paths, draws=args.draws, **kw)
        test_items = P.task_items(parts["test"], paths, **kw)[: args.eval_rows]
        built_s = time.perf_counter() - t0
        cfg = TinyLMConfig(vocab_size=args.vocab, d_model=args.d_model, n_layers=args.layers,
                           n_heads=args.heads or max(2, args.d_model // 64), max_len=args.max_len)
        texts = [it.request + "\n" + "\n".join(it.window) + "\n" + it.hunk.text for it in train_items]
        bb = ScratchBackbone.create(texts, cfg, seed=7)
        examples = [P.example(bb, it, args.max_len) for it in train_items]
        tc = TrainConfig(**budget_preset("nightly", epochs=args.epochs, max_minutes=args.minutes),
                         device="cpu", warmup=20).resolved(log=lambda s: print(s, file=sys.stderr))
        hist = train(bb, examples, tc)
        t1 = time.perf_counter()
        drafts = {"LM": P.draft(bb, test_items)}
        decode_s = time.perf_counter() - t1
        drafts |= _references(train_items, test_items)
        scores = {name: P.score_drafts(test_items, d, paths) for name, d in drafts.items()}
        report = {"corpus": {k: v for k, v in rep.as_dict().items() if k in ("train", "val", "test")},
                  "task_rows": {"train": len(train_items), "test": len(test_items),
                                "test_commits": parts["test"].height},
                  "lm": {"n_params": sum(p.numel() for p in bb.model.parameters()), **cfg.as_dict()},
                  "train": {"steps": hist.steps_done, "planned_steps": hist.planned_steps, "tokens": hist.tokens,
                            "epochs": hist.steps_done * tc.batch_size / max(len(examples), 1),
                            "seconds": round(hist.seconds, 1), "loss_first": hist.first_loss(),
                            "loss_last": hist.last_loss()},
                  "args": vars(args), "build_s": round(built_s, 1), "decode_s": round(decode_s, 1), "scores": scores,
                  "samples": [{"sha": it.sha, "gold": it.hunk.text, "lm": d}
                              for it, d in list(zip(test_items, drafts["LM"], strict=True))[:5]]}
    (out / "patches.json").write_text(json.dumps(report, indent=1, default=float))
    print(json.dumps({k: v for k, v in report.items() if k not in ("samples", "scores")}, default=float))
    print("| drafts | rows | apply as drafted | apply after repair | old side = gold | changed lines F1 |")
    print("|---|---|---|---|---|---|")
    for name, s in scores.items():
        print(f"| {name} | {s['patch_task_rows']:.0f} | {s['patch_task_apply_share']:.1%} | "
              f"{s['patch_task_apply_share_repaired']:.1%} | {s['patch_task_old_side_exact']:.1%} | {s['patch_task_changed_f1']:.2f} |")


if __name__ == "__main__":
    main()
