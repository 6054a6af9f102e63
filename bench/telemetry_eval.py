"""Bench-scale held-out evaluation of the telemetry models; prints JSON.

    .venv/bin/python bench/telemetry_eval.py [--seeds 8 --test-seeds 4 --duration 600]
"""

import argparse
import json

from kforge.telemetry.evaluate import evaluate_forecaster, evaluate_policy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--test-seeds", type=int, default=4)
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--skip-policy", action="store_true")
    a = ap.parse_args()
    out = {"forecaster": evaluate_forecaster(a.seeds, a.test_seeds, a.duration)}
    if not a.skip_policy:
        out["policy"] = evaluate_policy()
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
