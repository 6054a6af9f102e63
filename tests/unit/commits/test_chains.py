import polars as pl
from kforge.commits.chains import build_chains, commit_labels


def _commits(rows: list[dict]) -> pl.DataFrame:
    base = {"fixes": [], "reverts_sha_raw": None, "reverts_subject_raw": None}
    return pl.DataFrame([{**base, **r} for r in rows], schema={
        "repo": pl.String, "sha": pl.String, "committer_ts": pl.Int64, "subject": pl.String,
        "fixes": pl.List(pl.Struct({"sha": pl.String, "subject": pl.String})),
        "reverts_sha_raw": pl.String, "reverts_subject_raw": pl.String})


def test_prefix_subject_and_unresolved() -> None:
    a = "aaaa111122223333444455556666777788889999"
    b = "bbbb111122223333444455556666777788889999"
    c = "cccc111122223333444455556666777788889999"
    df = _commits([
        {"repo": "r", "sha": a, "committer_ts": 1, "subject": "x: add feature"},
        {"repo": "r", "sha": b, "committer_ts": 2, "subject": "x: other"},
        {"repo": "r", "sha": c, "committer_ts": 3, "subject": "x: fix",
         "fixes": [{"sha": a[:12], "subject": "x: add feature"},      # by prefix
                   {"sha": "0000000000ab", "subject": "x: other"},    # prefix unknown -> by subject
                   {"sha": "ffffffffffff", "subject": "elsewhere"}]},  # unresolved
        {"repo": "r", "sha": "d" * 40, "committer_ts": 4, "subject": 'Revert "x: other"',
         "reverts_sha_raw": b[:10], "reverts_subject_raw": "x: other"},
    ])
    ch = build_chains(df)
    got = {(r["kind"], r["ref"]): (r["target_sha"], r["resolved_by"]) for r in ch.iter_rows(named=True)}
    assert got[("fixes", a[:12])] == (a, "sha")
    assert got[("fixes", "0000000000ab")] == (b, "subject")
    assert got[("fixes", "ffffffffffff")] == (None, "unresolved")
    assert got[("reverts", b[:10])] == (b, "sha")
    labels = {r["sha"]: r for r in commit_labels(df, ch).iter_rows(named=True)}
    assert labels[a]["fixed_later"] and labels[b]["fixed_later"] and labels[b]["reverted"]
    assert not labels[c]["fixed_later"] and not labels[a]["reverted"]


def test_ambiguous_prefix_falls_back_to_subject() -> None:
    s1, s2 = "abcdef" + "1" * 34, "abcdef" + "2" * 34
    df = _commits([
        {"repo": "r", "sha": s1, "committer_ts": 1, "subject": "one"},
        {"repo": "r", "sha": s2, "committer_ts": 2, "subject": "two"},
        {"repo": "r", "sha": "9" * 40, "committer_ts": 3, "subject": "fix",
         "fixes": [{"sha": "abcdef", "subject": "two"}]},
    ])
    row = build_chains(df).row(0, named=True)
    assert (row["target_sha"], row["resolved_by"]) == (s2, "subject")


def test_no_cross_repository_resolution() -> None:
    a = "a" * 40
    df = _commits([
        {"repo": "r1", "sha": a, "committer_ts": 1, "subject": "x"},
        {"repo": "r2", "sha": "b" * 40, "committer_ts": 2, "subject": "y", "fixes": [{"sha": a[:12], "subject": "x"}]},
    ])
    assert build_chains(df)["resolved_by"].to_list() == ["unresolved"]
