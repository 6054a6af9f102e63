"""Kernel crash classification on the real syzkaller file: grouped held-out report with per-class
scores and the most frequent confusions (issue 4).

    nice .venv/bin/python bench/healing_kernel.py --data ../shared/data [--label crash_class] [--folds 5]
        [--system system] [--empty-title own]

``--empty-title shared`` (default) is the project protocol: GroupKFold by ``title``, so all rows with
an empty title (the "no crash" logs) form ONE group and land in one fold together, whose training
folds then hold no "no crash" example at all. ``--empty-title own`` gives each untitled row its own
group (they are not near-duplicates of each other); it is reported as a second reading, never instead.
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))


def per_class(y: list[str], pred: list[str]) -> list[tuple[str, int, float, float, float]]:
    from sklearn.metrics import precision_recall_fscore_support

    labels = sorted(set(y))
    p, r, f, n = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return sorted(zip(labels, n.tolist(), p.tolist(), r.tolist(), f.tolist(), strict=True), key=lambda t: -t[1])


def main(argv: list[str] | None = None) -> int:
    from kforge.healing.datasets import KERNEL, load_task
    from kforge.healing.evaluate import evaluate_task, format_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--label", default="crash_class")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--system", default="system", help="system whose per-class scores and confusions to show")
    ap.add_argument("--empty-title", choices=("shared", "own"), default="shared")
    ap.add_argument("--confusions", type=int, default=25)
    args = ap.parse_args(argv)

    rows = load_task(args.data, KERNEL)
    groups = np.array([r["title"] if (r["title"] or args.empty_title == "shared") else f"untitled:{r['id']}"
                       for r in rows])
    t0 = time.time()
    res = evaluate_task(rows, "kernel", (args.label,), "title", n_folds=args.folds, keep_predictions=True,
                        groups=groups)
    print(format_report(res))
    lab = res["labels"][args.label]
    y, pred = lab["y"], lab["predictions"][args.system]
    print(f"-- per class ({args.system}): n precision recall f1")
    for c, n, p, r, f in per_class(y, pred):
        print(f"   {c:<34} {n:4d} {p:6.3f} {r:6.3f} {f:6.3f}")
    print(f"-- top confusions ({args.system}): true -> predicted x count")
    for (t, p), k in Counter((t, p) for t, p in zip(y, pred, strict=True) if t != p).most_common(args.confusions):
        print(f"   {t:<34} -> {p:<34} x{k}")
    print(f"({time.time() - t0:.0f} s, empty titles: {args.empty_title})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
