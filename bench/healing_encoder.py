"""The pretrained text encoder in the healing classifier (issues 16 and 20): ablation on the same grouped folds.

    nice .venv/bin/python bench/healing_encoder.py --data ../shared/data --kind python --group fname \\
        --variants base,embed_knn,embed_lr,embed_knn+embed_lr

Each variant is the shipped system (``evaluate_task``: members, hybrid mode and abstention threshold all fitted on the
training folds) with the named encoder members added to ``--members``. ``--group`` is the column whose groups are held
out whole (notebook ``fname``, error cluster ``cluster_id``, crash ``title``). Members already fitted on the same rows
are reused across variants (in-process memo), so each extra variant costs only its new members.

Per variant: full-coverage accuracy / macro-F1 of ``system`` (what ``pred_`` holds), TF-IDF+LR on the same folds,
held-out coverage and precision at the threshold tuned on training folds for ``--precision`` (default 0.8), and the
best precision any threshold could reach at 50 % held-out coverage (the held-out confidence ranking, an upper bound:
it is read off the held-out rows, not tuned on them).
"""

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))


def memoize_members() -> None:
    """Fit each (kind, rows, labels) member once per process."""
    from kforge.healing import classifiers

    real, memo = classifiers.fit_member, {}

    def fit(kind, X, y, seed=0):  # noqa: ANN001, ANN202
        h = hashlib.sha256(f"{kind}\0{seed}".encode())
        for col in ("raw", "rule", "embed"):
            h.update("\0".join(map(str, X[col])).encode())
        h.update("\0".join(map(str, y)).encode())
        key = h.hexdigest()
        if key not in memo:
            memo[key] = real(kind, X, y, seed)
        return memo[key]

    classifiers.fit_member = fit


def precision_at(conf: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    """Accuracy of the ``coverage`` share of rows with the highest confidence."""
    n = max(1, int(round(coverage * len(conf))))
    return float(np.mean(correct[np.argsort(-conf, kind="stable")[:n]]))


def main(argv: list[str] | None = None) -> int:
    from kforge.healing.datasets import KERNEL, PYTHON, load_task
    from kforge.healing.evaluate import evaluate_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--kind", choices=("python", "kernel"), default="python")
    ap.add_argument("--label", default="")
    ap.add_argument("--group", default="", help="column held out whole (default: the task's group)")
    ap.add_argument("--members", default="linear,gbm")
    ap.add_argument("--variants", default="base,embed_knn,embed_lr")
    ap.add_argument("--precision", type=float, default=0.8)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="write y, system predictions and confidences per variant (JSON)")
    ap.add_argument("--curve", action="store_true", help="also print precision at 10 %%, 20 %%, ... coverage")
    a = ap.parse_args(argv)
    task = PYTHON if a.kind == "python" else KERNEL
    label, group = a.label or task.labels[0], a.group or task.group
    rows = load_task(a.data, task)
    groups = np.array([str(r.get(group, i)) for i, r in enumerate(rows)])
    memoize_members()
    base = tuple(a.members.split(","))
    print(f"== {a.kind}.{label}: {len(rows)} rows, {len(set(groups))} groups by {group}, {a.folds}-fold; "
          f"precision target {a.precision}")
    print(f"   {'variant':<26} {'acc':>6} {'mF1':>6} {'tfidf_lr':>8} | {'cov@t':>6} {'prec@t':>6} {'val_cov':>7} | "
          f"{'prec@50%':>8} {'modes':<30} {'s':>5}")
    saved: dict[str, object] = {}
    for v in a.variants.split(","):
        kinds = base + tuple(k for k in v.split("+") if k != "base")
        t = time.time()
        res = evaluate_task(rows, a.kind, (label,), group, groups=groups, extra_models=(), kinds=kinds,
                            n_folds=a.folds, keep_predictions=True, precision_target=a.precision, not_held_out=set())
        r = res["labels"][label]
        s, ab = r["systems"]["system"], r["abstention"]
        y = np.array(r["y"], dtype=object)
        correct = np.array(r["predictions"]["system"], dtype=object) == y
        conf = np.array(r["system_confidence"])
        tf = r["systems"].get("tfidf_lr", {}).get("accuracy", float("nan"))
        print(f"   {v:<26} {s['accuracy']:6.3f} {s['macro_f1']:6.3f} {tf:8.3f} | {ab['heldout_coverage']:6.3f} "
              f"{ab['heldout_precision']:6.3f} {ab['validation_coverage']:7.3f} | {precision_at(conf, correct, 0.5):8.3f} "
              f"{','.join(r['chosen_modes']):<30} {time.time() - t:5.0f}", flush=True)
        saved[v] = {"y": r["y"], "pred": r["predictions"]["system"], "conf": r["system_confidence"],
                    "tfidf_lr": r["predictions"].get("tfidf_lr")}
        if a.out:
            a.out.write_text(json.dumps(saved))
        print("      members alone: " + " ".join(f"{k} {r['systems'][k]['accuracy']:.3f}" for k in (*kinds, "tfidf_lr")
                                                 if k in r["systems"]), flush=True)
        if a.curve:
            print("      precision at held-out coverage: " + " ".join(
                f"{c:.1f}:{precision_at(conf, correct, c):.3f}" for c in np.arange(0.1, 1.01, 0.1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
