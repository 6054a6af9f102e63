"""Ingestion speed and memory, against raw `git log --numstat` (the floor) and PyDriller, in one run.

Usage: python bench/ingest.py REPO_PATH [REPO_PATH ...] [--pydriller-max N] [--json OUT]

For each repository (read-only; nothing is written into it):
  * floor: `git log --numstat --no-renames --format=...` over HEAD to /dev/null (fails outright on
    snapshots with missing blobs; then the floor is reported as failed);
  * kforge: full ingestion (commits, file changes, trailers, subsystems) into a fresh warehouse, in a
    child process; wall time and peak RSS;
  * PyDriller: the same history, first N commits (commits/s, extrapolated to the whole history).
Prints one table; ratios are kforge/git and pydriller/git. Timings are never asserted in tests.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KFORGE = """
import sys, json
from kforge.git.ingest import ingest_repository
from kforge.storage import Warehouse
r = ingest_repository(sys.argv[1], Warehouse(sys.argv[2]))
print(json.dumps({"commits": r.commits_added, "files": r.files_added, "quarantined": r.quarantined}))
"""

PYDRILLER = """
import sys, time
from pydriller import Repository
n = 0
t = time.perf_counter()
for c in Repository(sys.argv[1], only_no_merge=True, order="reverse").traverse_commits():
    _ = (c.hash, c.msg, c.author.email, c.insertions, c.deletions, [(m.new_path, m.added_lines, m.deleted_lines) for m in c.modified_files])
    n += 1
    if n >= int(sys.argv[2]):
        break
print(n, time.perf_counter() - t)
"""


def timed(cmd: list[str], **kw) -> tuple[float, int, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before), proc


def bench_repo(repo: Path, pydriller_max: int, floor_exclude: list[str] | None = None) -> dict:
    n_commits = int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"], capture_output=True,
                                   text=True, check=True).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        # paths whose blobs are missing in a snapshot make `git log --numstat` fail outright; excluding them
        # (--floor-exclude) gives the floor over everything else
        excl = " ".join(f"':(exclude){p}'" for p in (floor_exclude or []))
        git_s, _, gp = timed(
            ["sh", "-c", f"git -C '{repo}' log --numstat --no-renames --format='%H%x00%an%x00%ae%x00%at%x00%B' HEAD"
                         f" -- . {excl} > /dev/null"])
        kf_s, kf_rss, kp = timed([sys.executable, "-c", KFORGE, str(repo), str(Path(tmp) / "w.duckdb")])
        if kp.returncode != 0:
            raise SystemExit(f"kforge ingestion failed on {repo}:\n{kp.stderr[-2000:]}")
        kf = json.loads(kp.stdout.strip().splitlines()[-1])
        # PyDriller needs a non-bare repository: a shared clone (no object copy, no checkout)
        bare = subprocess.run(["git", "-C", str(repo), "rev-parse", "--is-bare-repository"], capture_output=True,
                              text=True).stdout.strip() == "true"
        pd_repo = repo
        if bare:
            pd_repo = Path(tmp) / "pydriller-clone"
            subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(repo), str(pd_repo)], check=True)
        pd = subprocess.run([sys.executable, "-c", PYDRILLER, str(pd_repo), str(pydriller_max)], capture_output=True, text=True)
        pd_n, pd_s = (int(pd.stdout.split()[0]), float(pd.stdout.split()[1])) if pd.returncode == 0 else (0, float("nan"))
    pd_rate = pd_n / pd_s if pd_n else float("nan")
    return {
        "repo": str(repo), "commits": n_commits, "git_log_s": round(git_s, 2),
        "git_log_ok": gp.returncode == 0, "git_log_error": gp.stderr.strip()[-160:] if gp.returncode else "",
        "kforge_s": round(kf_s, 2), "kforge_peak_rss_mb": round(kf_rss / 1024, 1), "kforge_commits": kf["commits"],
        "kforge_files": kf["files"], "kforge_quarantined": kf["quarantined"],
        "kforge_commits_per_s": round(kf["commits"] / kf_s, 1),
        "ratio_kforge_over_git": round(kf_s / git_s, 2) if gp.returncode == 0 else None,
        "pydriller_commits_per_s": round(pd_rate, 1),
        "pydriller_est_full_s": round(n_commits / pd_rate, 1) if pd_n else None,
        "ratio_pydriller_over_git": round(n_commits / pd_rate / git_s, 1) if pd_n and gp.returncode == 0 else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repos", nargs="+", type=Path)
    ap.add_argument("--pydriller-max", type=int, default=600, help="commits PyDriller reads per repo (rate extrapolated)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--floor-exclude", action="append", default=[],
                    help="path excluded from the git-log floor (a path with missing blobs); repeatable")
    args = ap.parse_args()
    rows = [bench_repo(r, args.pydriller_max, args.floor_exclude) for r in args.repos]
    cols = ["repo", "commits", "git_log_s", "kforge_s", "ratio_kforge_over_git", "kforge_peak_rss_mb",
            "kforge_quarantined", "pydriller_commits_per_s", "ratio_pydriller_over_git"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
        if not r["git_log_ok"]:
            print(f"   git log failed: {r['git_log_error']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
