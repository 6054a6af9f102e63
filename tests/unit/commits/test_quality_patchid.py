import polars as pl
from kforge.commits.patchid import patch_id
from kforge.commits.quality import quality_score

DIFF = """diff --git a/a.c b/a.c
index 1..2 100644
--- a/a.c
+++ b/a.c
@@ -1,3 +1,3 @@ int f(void)
-\treturn 1;
+\treturn 2;
"""


def test_patch_id_ignores_whitespace_and_hunk_positions() -> None:
    moved = DIFF.replace("@@ -1,3 +1,3 @@", "@@ -40,3 +41,3 @@").replace("\treturn 2;", "    return   2;")
    assert patch_id(DIFF) == patch_id(moved) != ""
    assert patch_id(DIFF) != patch_id(DIFF.replace("return 2", "return 3"))
    assert patch_id("") == ""


def _row(**kw) -> dict:
    base = {"subject": "net/ice: fix ring teardown", "body": "Why one.\nWhy two.\n\nSigned-off-by: a", "subject_prefix": "net/ice",
            "signed_off_by": ["a"], "reviewed_by": ["b"], "acked_by": [], "tested_by": [], "lines_added": 10,
            "lines_deleted": 2, "truncated": False, "has_diff": True}
    return {**base, **kw}


def test_quality_score_rewards_documented_criteria() -> None:
    df = pl.DataFrame([_row(), _row(subject="x"), _row(subject='Revert "net/ice: fix ring teardown"'),
                       _row(reviewed_by=[], body="")])
    q = quality_score(df).to_list()
    assert q[0] == 1.0
    assert q[1] < q[0] and q[3] < q[0]
    assert q[2] <= 0.5
