"""Point-in-time patch features on a hand-made history whose answers are known."""

import polars as pl
import pytest
from kforge.errors import InputError
from kforge.features import build_patch_features, point_in_time_check

DAY = 86400


def _commit(sha: str, t: int, author: str, subject: str = "net: change", fixes: list | None = None) -> dict:
    return {"repo": "r", "sha": sha, "parents": ["p"], "author_email": author, "committer_email": "m@x",
            "author_ts": t, "committer_ts": t, "subject": subject, "body": "because it was broken",
            "fixes": fixes or [], "cc_stable": False, "reverts_sha_raw": None, "reverts_subject_raw": None,
            "signed_off_by": [author], "reviewed_by": [], "cve_ids": []}


@pytest.fixture()
def history() -> tuple[pl.DataFrame, pl.DataFrame]:
    commits = pl.DataFrame([
        _commit("a1", 1 * DAY, "ann"),
        _commit("b1", 2 * DAY, "bob"),
        _commit("a2", 3 * DAY, "ann"),
        _commit("c1", 3 * DAY, "cat"),          # same second as a2: they must not see each other
        _commit("b2", 10 * DAY, "bob", "net: fix crash", [{"sha": "a1", "subject": "net: change"}]),
    ], schema_overrides={"fixes": pl.List(pl.Struct({"sha": pl.String, "subject": pl.String})),
                         "cve_ids": pl.List(pl.String), "reviewed_by": pl.List(pl.String)})
    files = pl.DataFrame([
        ("r", "a1", "net/core/x.c", 100, 0, "net/core"),
        ("r", "b1", "net/core/x.c", 10, 5, "net/core"),
        ("r", "b1", "fs/y.c", 30, 0, "fs"),
        ("r", "a2", "net/core/x.c", 1, 1, "net/core"),
        ("r", "c1", "net/core/x.c", 7, 0, "net/core"),
        ("r", "b2", "net/core/x.c", 2, 2, "net/core"),
    ], schema=["repo", "sha", "path", "added", "deleted", "subsystem"], orient="row")
    return commits, files


def test_kamei_metrics_are_point_in_time(history: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    commits, files = history
    f = {r["sha"]: r for r in build_patch_features(commits, files).iter_rows(named=True)}
    assert f["a1"]["exp"] == 0 and f["a2"]["exp"] == 1 and f["b2"]["exp"] == 1
    assert f["b1"]["ns"] == 2 and f["b1"]["nf"] == 2 and f["b1"]["la"] == 40
    assert f["b1"]["entropy"] == pytest.approx(-(15 / 45) * __import__("math").log2(15 / 45)
                                                - (30 / 45) * __import__("math").log2(30 / 45))
    # x.c before a2: 100 + (10 - 5) = 105 lines; c1 (same second) is not history for a2 and vice versa
    assert f["a2"]["lt"] == 105 and f["c1"]["lt"] == 105
    assert f["a2"]["ndev"] == 2 and f["c1"]["ndev"] == 2
    assert f["a2"]["age"] == pytest.approx(1.0)
    assert f["b2"]["nuc"] == 1 and f["b2"]["ndev"] == 3
    assert f["b2"]["fix"] == 1 and f["a1"]["fix"] == 0
    # a1 is fixed by b2 at day 10: nobody before day 10 sees that bug
    assert f["c1"]["file_prior_bugs"] == 0 and f["b2"]["author_prior_bugs"] == 0
    assert f["a2"]["rationale_words"] == 1


def test_bug_history_counts_fixes_only_after_they_land(history: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    commits, files = history
    later = pl.concat([commits, pl.DataFrame([_commit("a3", 20 * DAY, "ann")], schema=commits.schema)])
    more = pl.concat([files, pl.DataFrame([("r", "a3", "net/core/x.c", 1, 0, "net/core")], schema=files.schema,
                                          orient="row")])
    f = build_patch_features(later, more).filter(pl.col("sha") == "a3").row(0, named=True)
    assert f["file_prior_bugs"] == 1 and f["author_prior_bugs"] == 1


def test_point_in_time_check_passes_and_catches_leaks(history: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    commits, files = history
    feats = build_patch_features(commits, files)
    assert point_in_time_check(commits, files, feats, n_probes=3).passed
    leaky = feats.with_columns(pl.col("exp") + (pl.col("t") < 10 * DAY).cast(pl.Float64))  # "knows" the future
    report = point_in_time_check(commits, files, leaky, n_probes=3)
    assert not report.passed and report.mismatches[0]["feature"] == "exp"


def test_missing_columns_are_a_clear_error(history: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    commits, files = history
    with pytest.raises(InputError, match="lacks columns: subject"):
        build_patch_features(commits.drop("subject"), files)


def test_real_dpdk_slice_is_point_in_time(shared_data) -> None:  # noqa: ANN001
    from kforge.features import files_from_commit_files

    commits = pl.read_parquet(shared_data / "kernel" / "dpdk.commits.parquet").sort("committer_ts").head(3000)
    files = files_from_commit_files(commits)
    feats = build_patch_features(commits, files)
    assert feats.height == commits.filter(pl.col("parents").list.len() < 2).height
    assert point_in_time_check(commits, files, feats, n_probes=3).passed


DIFF = """diff --git a/net/core/x.c b/net/core/x.c
--- a/net/core/x.c
+++ b/net/core/x.c
@@ -10,6 +10,12 @@ static int probe(struct dev *d)
     int ret;
-    if (d->ok)
-        return 0;
+    p = rte_zmalloc("x", sizeof(*p), 0);
+    if (p == NULL)
+        goto fail;
+    rte_spinlock_lock(&d->lock);
+    q = (struct foo *)p;
+
     return ret;
"""


def test_diff_features_count_added_and_removed_constructs() -> None:
    from kforge.features.diff import DIFF_NUMERIC, diff_features

    f = diff_features(pl.DataFrame({"sha": ["x", "y"], "diff": [DIFF, None], "truncated": [False, None]}))
    assert f.columns == ["sha", *DIFF_NUMERIC]
    x = f.filter(pl.col("sha") == "x").row(0, named=True)
    assert x["diff_added_lines"] == 6 and x["diff_removed_lines"] == 2     # file headers are not lines
    assert x["diff_hunks"] == 1 and x["diff_hunks_in_function"] == 1 and x["diff_added_blank_lines"] == 1
    assert x["diff_added_goto"] == 1 and x["diff_added_alloc"] == 1 and x["diff_added_null_check"] == 1
    assert x["diff_added_cast"] == 1 and x["diff_added_cond"] == 1 and x["diff_removed_cond"] == 1
    assert x["diff_added_lock"] >= 1 and x["diff_removed_lock"] == 0 and x["diff_added_sizeof"] == 1
    assert x["diff_removed_deref"] == 1 and x["diff_added_free"] == 0
    y = f.filter(pl.col("sha") == "y").row(0, named=True)
    assert y["has_diff"] == 1 and y["diff_added_lines"] == 0


def test_diff_features_join_commits_and_are_point_in_time(history: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    commits, files = history
    diffs = pl.DataFrame({"sha": ["a2", "b2"], "diff": [DIFF, DIFF.replace("goto fail", "return -EINVAL")],
                          "truncated": [False, False]})
    feats = build_patch_features(commits, files, diffs=diffs)
    f = {r["sha"]: r for r in feats.iter_rows(named=True)}
    assert f["a2"]["has_diff"] == 1 and f["a1"]["has_diff"] == 0 and f["a1"]["diff_added_lines"] == 0
    assert f["a2"]["diff_added_goto"] == 1 and f["b2"]["diff_added_goto"] == 0 and f["b2"]["diff_added_err_return"] == 1
    assert point_in_time_check(commits, files, feats, n_probes=3, diffs=diffs).passed
    # a diff feature that depends on a later commit's diff is caught
    leaky = feats.with_columns(pl.when(pl.col("sha") == "b1").then(1.0).otherwise(pl.col("diff_added_goto"))
                               .alias("diff_added_goto"))
    report = point_in_time_check(commits, files, leaky, n_probes=3, diffs=diffs)
    assert not report.passed and {m["feature"] for m in report.mismatches} == {"diff_added_goto"}


def test_real_dpdk_diff_features_are_point_in_time(shared_data) -> None:  # noqa: ANN001
    from kforge.features import files_from_commit_files

    diffs = pl.read_parquet(shared_data / "kernel" / "dpdk.diffs.parquet", columns=["sha", "diff", "truncated"])
    commits = (pl.read_parquet(shared_data / "kernel" / "dpdk.commits.parquet")
               .filter(pl.col("sha").is_in(diffs["sha"].implode())).sort("committer_ts").head(1500))
    files = files_from_commit_files(commits)
    feats = build_patch_features(commits, files, diffs=diffs)
    assert feats["has_diff"].min() == 1 and feats["diff_added_lines"].sum() > 0
    assert point_in_time_check(commits, files, feats, n_probes=3, diffs=diffs).passed
