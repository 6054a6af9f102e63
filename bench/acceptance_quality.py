"""The acceptance family's quality targets on the real data (same code as
``kforge acceptance evaluate``). Usage::

    .venv/bin/python bench/acceptance_quality.py [--data ../shared/data] [--suite all|dpdk|jit|ltp|cross]
        [--dpdk-git PATH]   # a DPDK clone: diffs for the commits dpdk.diffs.parquet lacks (dpdk suite)

Targets: DPDK fixed_later (train < 2022, test 2022) AUC >= 0.84 vs lines-added and plain LightGBM;
JIT anchors (80/20 by time) mean AUC >= 0.75 with LApredict reproduced; LTP e-mails (train < 2024,
test 2024) AUC >= 0.68; cross-repository AUC above lines-added on unseen repositories.
"""

import argparse
import json
import time
from pathlib import Path

from kforge.acceptance.evaluate import SUITES, suite_dpdk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--suite", default="all", choices=["all", *SUITES])
    ap.add_argument("--n-estimators", type=int, default=250)
    ap.add_argument("--dpdk-git", type=Path, default=None,
                    help="DPDK git clone: diff-content features for every commit, not only the stored recent ones")
    args = ap.parse_args()
    for name in (list(SUITES) if args.suite == "all" else [args.suite]):
        t0 = time.perf_counter()
        if name == "dpdk" and args.dpdk_git is not None:
            res = suite_dpdk(Path(args.data), args.n_estimators, args.dpdk_git)
        else:
            res = SUITES[name](Path(args.data), args.n_estimators)
        print(json.dumps({"suite": name, "wall_s": round(time.perf_counter() - t0, 1), **res}, default=str), flush=True)


if __name__ == "__main__":
    main()
