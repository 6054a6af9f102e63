"""The "acceptance" feedback family: validated rows, all-or-nothing imports."""

import json
from pathlib import Path

import pytest
from kforge.errors import InputError
from kforge.feedback import add_feedback, feedback_since, import_feedback


def test_add_and_reject(warehouse) -> None:  # noqa: ANN001
    import polars as pl

    with pytest.raises(InputError, match="unknown commit"):
        add_feedback("acceptance", {"target": "commit", "repo": "dpdk", "item_id": "abcdef123", "outcome": "true"},
                     warehouse)
    warehouse.append("commits", pl.DataFrame({"repo": ["dpdk"], "sha": ["abcdef123" + "0" * 31]}))
    add_feedback("acceptance", {"target": "commit", "repo": "dpdk", "item_id": "abcdef123", "outcome": "true"},
                 warehouse)
    with pytest.raises(InputError, match="must be one of commit, email"):
        add_feedback("acceptance", {"target": "patch", "repo": "r", "item_id": "x", "outcome": "1"}, warehouse)
    with pytest.raises(InputError, match="p_predicted must be within"):
        add_feedback("acceptance", {"target": "email", "repo": "ltp", "item_id": "m1", "outcome": "0",
                                    "p_predicted": "1.5"}, warehouse)
    with pytest.raises(InputError, match="must be a sha"):
        add_feedback("acceptance", {"target": "commit", "repo": "r", "item_id": "ab", "outcome": "1"}, warehouse)
    assert feedback_since("acceptance", warehouse).height == 1


def test_import_is_all_or_nothing(warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    good = {"target": "email", "repo": "ltp", "item_id": "m1", "outcome": True}
    f = tmp_path / "fb.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [good, {**good, "outcome": "maybe"}]))
    with pytest.raises(InputError, match="line 2"):
        import_feedback("acceptance", f, warehouse)
    assert feedback_since("acceptance", warehouse).height == 0
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "item_id": "m2"}))
    assert import_feedback("acceptance", f, warehouse) == 2
    assert feedback_since("acceptance", warehouse, after_id=1)["item_id"].to_list() == ["m2"]


def test_an_email_merge_is_dated_when_feedback_first_reported_it(warehouse) -> None:  # noqa: ANN001
    """"Not merged" at t=1000, then "merged" at t=9000: the merge is known from 9000 on. It used to be
    dated 1000 (the earliest feedback of either outcome), so a training label as of a cutoff in
    between counted a merge nobody knew of at the cutoff."""
    import polars as pl
    from kforge.acceptance.pipeline import email_training_frame

    mails = pl.DataFrame({"archive_commit": ["m1", "m2"], "from_email": ["a@x", "b@x"], "ts": [500, 600],
                          "subject": ["[PATCH] net: fix", "[PATCH] mm: fix"], "version": [1, 1], "index": [1, 1],
                          "total": [1, 1], "is_cover": [False, False], "is_rfc": [False, False],
                          "title_norm": ["net: fix", "mm: fix"], "raw_email": ["Subject: x\n\nbody", "Subject: y\n\nbody"]})
    for item, outcome, ts in (("m1", "false", 1000), ("m1", "true", 9000), ("m2", "true", 2000), ("m2", "false", 3000)):
        add_feedback("acceptance", {"target": "email", "repo": "ltp", "item_id": item, "outcome": outcome,
                                    "observed_ts": str(ts)}, warehouse)
    ev = dict(email_training_frame(mails, warehouse).select("email_id", "event_ts").iter_rows())
    assert ev == {"m1": 9000, "m2": None}  # m2: the latest word is "not merged"
