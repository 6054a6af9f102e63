"""Point-in-time check: a commit's features must not change when later history is removed."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kforge.features.build import NUMERIC_FEATURES, build_patch_features, event_times_for
from kforge.storage import Warehouse


@dataclass(frozen=True)
class PitReport:
    checked: int
    mismatches: list[dict[str, object]]

    @property
    def passed(self) -> bool:
        return self.checked > 0 and not self.mismatches


def point_in_time_check(commits: pl.DataFrame, files: pl.DataFrame, features: pl.DataFrame,
                        n_probes: int = 4, tol: float = 1e-6, seed: int = 0,
                        diffs: pl.DataFrame | None = None, repos: dict[str, Path] | None = None) -> PitReport:
    """Recompute features for ``n_probes`` commits (spread over time) with every commit committed
    after them removed (their files and diffs too), and compare with the stored ``features`` rows.
    Pass the ``diffs`` the features were built with so the diff-content features are checked, and
    the clones (``repos``: repo -> path) the line origins came from: those are recomputed from the
    history up to the probe commit only."""
    if features.height == 0:
        return PitReport(0, [])
    ordered = features.sort("t")
    idx = sorted({int(q * (ordered.height - 1)) for q in
                  [0.35 + 0.6 * i / max(n_probes - 1, 1) for i in range(n_probes)]})
    probes = ordered[idx].select("repo", "sha", "t")
    mismatches: list[dict[str, object]] = []
    for repo, sha, t in probes.iter_rows():
        keep = commits.filter((pl.col("repo") == repo) & (pl.col("committer_ts") <= t))
        cut_files = files.join(keep.select("repo", "sha"), on=["repo", "sha"], how="semi")
        cut_diffs = None if diffs is None else diffs.filter(pl.col("sha").is_in(keep["sha"].implode()))
        origins = None
        if repos and repo in repos:
            from kforge.features.line_origins import for_repositories

            origins, _ = for_repositories({repo: Path(repos[repo])}, keep, event_times_for(keep), upto=sha)
        again = build_patch_features(keep, cut_files, diffs=cut_diffs, line_origins=origins).filter(pl.col("sha") == sha)
        stored = features.filter((pl.col("repo") == repo) & (pl.col("sha") == sha))
        for col in (*NUMERIC_FEATURES, "subsystem"):
            a, b = stored[col][0], again[col][0]
            same = a == b if isinstance(a, str) else abs(float(a) - float(b)) <= tol * max(1.0, abs(float(a)))
            if not same:
                mismatches.append({"sha": sha, "feature": col, "stored": a, "recomputed": b})
    return PitReport(probes.height, mismatches)


PIT_TABLE = "patch_features_pit"


def record_point_in_time(wh: Warehouse, features: pl.DataFrame, report: PitReport) -> None:
    """Store the outcome of the point-in-time check for this exact ``features`` table (by content
    hash), so models trained on it can say whether it was checked (and never claim it was when it
    was not)."""
    from kforge.registry.tracking import data_version

    wh.replace(PIT_TABLE, pl.DataFrame({
        "features_version": [data_version(features)], "passed": [report.passed], "probes": [report.checked],
        "mismatches": [len(report.mismatches)]}))


def point_in_time_status(wh: Warehouse, features: pl.DataFrame) -> bool | None:
    """True/False: the check's outcome for this ``features`` table; None: never checked, or the
    table changed since the check ran."""
    from kforge.registry.tracking import data_version

    if not wh.has_table(PIT_TABLE):
        return None
    row = wh.read_table(PIT_TABLE)
    if row.height == 0 or row["features_version"][0] != data_version(features):
        return None
    return bool(row["passed"][0])
