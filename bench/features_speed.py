"""Patch-feature speed over a whole repository (default: DPDK, 45k commits) on this machine.

Prints wall time per stage, peak RSS, and the feature step's ratio to the I/O floor (reading the
parquet file) measured in the same run; with the repository's ``*.diffs.parquet`` (when present) it
also times the diff-content features on their own. With ``--git PATH`` (a clone of the same
project) it times the line-origin features: reading the change log from git (the I/O floor of
that step) against the replay + statistics, in the same run. Usage::

    .venv/bin/python bench/features_speed.py [--data ../shared/data] [--repo dpdk] [--profile] [--git PATH]
"""

import argparse
import cProfile
import json
import pstats
import resource
import time
from pathlib import Path

import polars as pl
from kforge.commits.chains import build_chains
from kforge.features.build import _chain_ready, build_patch_features, files_from_commit_files
from kforge.features.diff import diff_features


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--repo", default="dpdk")
    ap.add_argument("--profile", action="store_true", help="print the top functions by cumulative time")
    ap.add_argument("--git", default=None, metavar="PATH", help="a clone of the repository: time the line origins")
    args = ap.parse_args()
    path = Path(args.data) / "kernel" / f"{args.repo}.commits.parquet"
    t0 = time.perf_counter()
    commits = pl.read_parquet(path)
    t1 = time.perf_counter()
    files = files_from_commit_files(commits)
    chains = build_chains(_chain_ready(commits))
    t2 = time.perf_counter()
    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    feats = build_patch_features(commits, files, chains)
    if prof:
        prof.disable()
    t3 = time.perf_counter()
    out = {"repo": args.repo, "commits": commits.height, "file_rows": files.height, "features": feats.width - 5,
           "read_parquet_s": round(t1 - t0, 3), "files_and_chains_s": round(t2 - t1, 3),
           "features_s": round(t3 - t2, 3), "features_per_read": round((t3 - t2) / max(t1 - t0, 1e-9), 2),
           "commits_per_s": round(commits.height / (t3 - t2), 1),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    dpath = path.with_name(f"{args.repo}.diffs.parquet")
    if dpath.exists():
        t4 = time.perf_counter()
        diffs = pl.read_parquet(dpath, columns=["sha", "diff", "truncated"])
        t5 = time.perf_counter()
        diff_features(diffs)
        t6 = time.perf_counter()
        out |= {"diffs": diffs.height, "diff_mb": round(diffs["diff"].str.len_bytes().sum() / 2**20, 1),
                "read_diffs_s": round(t5 - t4, 3), "diff_features_s": round(t6 - t5, 3),
                "diffs_per_s": round(diffs.height / (t6 - t5), 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if args.git:
        out |= _line_origins(Path(args.git), commits, chains)
    print(json.dumps(out))
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(12)


def _line_origins(repo: Path, commits: pl.DataFrame, chains: pl.DataFrame) -> dict[str, float]:
    from kforge.features.build import commit_event_times
    from kforge.features.line_origins import line_origin_features
    from kforge.git.line_log import BlobLines, change_log, first_parent_shas

    t0 = time.perf_counter()
    shas = first_parent_shas(repo)
    log = change_log(repo, shas)
    t1 = time.perf_counter()
    blobs = BlobLines(repo)
    feats, counters = line_origin_features(log, shas, commits, commit_event_times(chains), blobs)
    blobs.close()
    t2 = time.perf_counter()
    return {"change_log_mb": round(len(log) / 2**20, 1), "change_log_s": round(t1 - t0, 2),
            "line_origins_s": round(t2 - t1, 2), "line_origins_per_change_log": round((t2 - t1) / (t1 - t0), 3),
            "line_origin_rows": feats.height, "line_origin_mismatches": counters["mismatches"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


if __name__ == "__main__":
    main()
