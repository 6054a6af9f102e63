"""Capacity measurements: how import, chains/labels, features and training grow with commits.

Slices the oldest N commits of ../shared/data/kernel/dpdk.commits.parquet (time order, so a
slice is what an N-commit history looks like), and for each N runs, in a fresh process and a
fresh warehouse: kforge's parquet import (the ingestion write path), fix/revert chains + labels,
point-in-time patch features, and a LightGBM fit on a time split (train the oldest 80 %, held-out
AUC on the rest) in-process and, with --dask, on a 2-worker Dask LocalCluster. Prints a markdown
table, the log-log growth exponent per step between the two largest sizes, and an extrapolation
to the 1.4M-commit kernel history; writes the raw numbers as JSON.

    .venv/bin/python bench/capacity.py --sizes 1000 5000 15000 45000 --out out/capacity.json [--dask]
"""

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "kernel" / "dpdk.commits.parquet"
KERNEL_COMMITS = 1_400_000


def one_size(n: int, dask: bool) -> dict:
    import numpy as np
    import polars as pl
    from kforge.commits.chains import build_chains, commit_labels
    from kforge.features import NUMERIC_FEATURES, build_patch_features
    from kforge.git.importer import import_commits
    from kforge.scale import ClusterConfig, GbmSpec, dask_client, train_gbm
    from kforge.storage import Warehouse
    from sklearn.metrics import roc_auc_score

    out: dict = {"commits": n}
    with tempfile.TemporaryDirectory(prefix="kforge-capacity-") as tmp:
        src = pl.read_parquet(DATA).sort("committer_ts").head(n)
        part = Path(tmp) / "slice.commits.parquet"
        src.write_parquet(part)
        wh = Warehouse(Path(tmp) / "warehouse.duckdb")
        t = time.perf_counter()
        import_commits(part, wh)
        out["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        commits, files = wh.read_table("commits"), wh.read_table("file_changes")
        out["read_s"] = time.perf_counter() - t
        out["file_changes"] = files.height
        t = time.perf_counter()
        chains = build_chains(commits)
        labels = commit_labels(commits, chains)
        wh.replace("commit_chains", chains)
        out["chains_s"] = time.perf_counter() - t
        t = time.perf_counter()
        feats = build_patch_features(commits, files, chains)
        wh.replace("patch_features", feats)
        out["features_s"] = time.perf_counter() - t
        out["warehouse_mb"] = (Path(tmp) / "warehouse.duckdb").stat().st_size / 2**20
        data = feats.join(labels.select("repo", "sha", "fixed_later"), on=["repo", "sha"], how="inner").sort("t")
        X = data.select(NUMERIC_FEATURES).fill_null(0).to_numpy().astype(np.float64)
        y = data["fixed_later"].cast(pl.Float64).fill_null(0).to_numpy()
        cut = int(len(y) * 0.8)
        spec = GbmSpec(kind="lightgbm", n_estimators=200, learning_rate=0.05)
        t = time.perf_counter()
        model = train_gbm(X[:cut], y[:cut], spec)
        out["train_local_s"] = time.perf_counter() - t
        test_has_both = len(set(y[cut:])) == 2
        out["test_auc"] = float(roc_auc_score(y[cut:], model.predict(X[cut:]))) if test_has_both else float("nan")
        out["lines_added_auc"] = (float(roc_auc_score(y[cut:], data["la"].fill_null(0).to_numpy()[cut:]))
                                  if test_has_both and "la" in data.columns else float("nan"))
        if dask:
            with dask_client(ClusterConfig.parse("dask", n_workers=2)) as client:
                t = time.perf_counter()
                train_gbm(X[:cut], y[:cut], spec, client=client)
                out["train_dask_s"] = time.perf_counter() - t
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


STEPS = [("import_s", "import (parquet -> warehouse)"), ("chains_s", "chains + labels"),
         ("features_s", "patch features (PIT)"), ("train_local_s", "LightGBM fit (in-process)"),
         ("train_dask_s", "LightGBM fit (Dask, 2 workers)")]


def report(rows: list[dict]) -> str:
    cols = ["commits", "file_changes", "import_s", "chains_s", "features_s", "train_local_s", "train_dask_s",
            "peak_rss_mb", "warehouse_mb", "test_auc", "lines_added_auc"]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r.get(c, float('nan')):.2f}" if isinstance(r.get(c), float) else str(r.get(c, ""))
                                       for c in cols) + " |")
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        lines += ["", f"growth exponent k (time ~ N^k, from {a['commits']} to {b['commits']} commits) and "
                  f"extrapolation to {KERNEL_COMMITS:,} commits:", "", "| step | k | at 1.4M (s) |", "|---|---|---|"]
        for key, name in STEPS + [("peak_rss_mb", "peak RSS (MB)")]:
            if key in a and key in b and a[key] > 0 and b[key] > 0:
                k = math.log(b[key] / a[key]) / math.log(b["commits"] / a["commits"])
                est = b[key] * (KERNEL_COMMITS / b["commits"]) ** max(k, 1.0 if key != "peak_rss_mb" else k)
                lines.append(f"| {name} | {k:.2f} | {est:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 15000, 45000])
    ap.add_argument("--dask", action="store_true", help="also time the fit on a 2-worker Dask LocalCluster")
    ap.add_argument("--out", default="out/capacity.json")
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.dask)))
        return 0
    if not DATA.exists():
        print(f"capacity: {DATA} not found (needs ../shared/data)", file=sys.stderr)
        return 2
    rows = []
    for n in sorted(args.sizes):
        cmd = [sys.executable, __file__, "--one", str(n), *(["--dask"] if args.dask else [])]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            print(res.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
