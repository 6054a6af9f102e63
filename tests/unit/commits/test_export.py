import json
from pathlib import Path

import pytest
from kforge.commits.chains import build_chains
from kforge.commits.export import ExportFilters, build_export, validate_export, write_export
from kforge.commits.tags import tag_commits
from kforge.errors import InputError
from kforge.git.diffs import extract_diffs
from kforge.git.ingest import ingest_repository
from kforge.storage import Warehouse


@pytest.fixture()
def wh(demo_repo: Path, tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "w.duckdb")
    ingest_repository(demo_repo, wh, name="demo")
    commits = wh.read_table("commits")
    wh.replace("commit_tags", tag_commits(commits))
    wh.replace("commit_chains", build_chains(commits))
    diffs, failed = extract_diffs(demo_repo, "demo", commits["sha"].to_list())
    assert not failed
    wh.replace("commit_diffs", diffs)
    return wh


@pytest.mark.parametrize("mode", ["standard", "commit-message", "bugfix", "security"])
def test_modes_write_valid_exports(wh: Warehouse, tmp_path: Path, mode: str) -> None:
    rows = build_export(wh, mode)
    assert rows.height > 10
    summary = write_export(rows, tmp_path / f"{mode}.jsonl", mode)
    assert Path(summary["config"]).exists()
    assert validate_export(summary["path"]) == []
    first = json.loads((tmp_path / f"{mode}.jsonl").read_text().splitlines()[0])
    assert first["mode"] == mode and first["instruction"] and first["output"]
    if mode == "commit-message":
        assert first["input"].startswith("diff --git")
    if mode == "bugfix":
        assert "diff --git" in first["input"] and first["output"].startswith("diff --git")


def test_filters(wh: Warehouse) -> None:
    all_rows = build_export(wh, "standard")
    hq = build_export(wh, "standard", ExportFilters(min_quality=0.8))
    assert 0 < hq.height < all_rows.height and hq["quality"].min() >= 0.8
    no_bug = build_export(wh, "standard", ExportFilters(exclude_tags=["bugfix"]))
    assert all("bugfix" not in t for t in no_bug["tags"].to_list())
    mm = build_export(wh, "standard", ExportFilters(subsystems=["mm"]))
    assert mm.height > 0
    assert all(sub == "mm" or msg.startswith("mm:") for sub, msg in mm.select("subsystem", "input").iter_rows())
    late = build_export(wh, "standard", ExportFilters(since="2019-03-01", until="2019-04-30"))
    assert late.height > 0 and late["date"].min() >= "2019-03-01" and late["date"].max() <= "2019-04-30"
    assert build_export(wh, "standard", ExportFilters(limit=5)).height == 5


def test_duplicates_removed_and_leakage_detected(wh: Warehouse, tmp_path: Path) -> None:
    rows = build_export(wh, "standard")
    assert rows["patch_id"].n_unique() == rows.height
    out = tmp_path / "e.jsonl"
    write_export(rows, out, "standard")
    lines = out.read_text().splitlines()
    leaked = json.loads(lines[0])
    leaked["split"] = "test"
    leaked["id"] = "other"
    out.write_text("\n".join([*lines, json.dumps(leaked)]) + "\n")
    problems = validate_export(out)
    assert any("both train and test" in p for p in problems)
    assert any("duplicate patch ids" in p for p in problems)


@pytest.mark.parametrize(("filters", "match"), [
    (ExportFilters(min_quality=2), "min-quality"), (ExportFilters(since="yesterday"), "YYYY-MM-DD"),
    (ExportFilters(test_fraction=1.5), "test-fraction"), (ExportFilters(limit=0), "limit"),
])
def test_bad_filters(wh: Warehouse, filters: ExportFilters, match: str) -> None:
    with pytest.raises(InputError, match=match):
        build_export(wh, "standard", filters)


def test_bad_mode_and_missing_tables(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "empty.duckdb")
    with pytest.raises(InputError, match="unknown export mode"):
        build_export(wh, "poetry")
    with pytest.raises(InputError, match="missing"):
        build_export(wh, "standard")


def test_axolotl_config_trains_and_evaluates_on_separate_disjoint_files(wh: Warehouse, tmp_path: Path) -> None:
    import yaml

    rows = build_export(wh, "standard")
    out = tmp_path / "s.jsonl"
    summary = write_export(rows, out, "standard")
    cfg = yaml.safe_load(Path(summary["config"]).read_text())
    train, test = cfg["datasets"][0]["path"], cfg["test_datasets"][0]["path"]
    assert train != test and train == summary["train_path"] and test == summary["test_path"]
    train_rows = [json.loads(x) for x in Path(train).read_text().splitlines()]
    test_rows = [json.loads(x) for x in Path(test).read_text().splitlines()]
    assert {r["split"] for r in train_rows} == {"train"} and {r["split"] for r in test_rows} == {"test"}
    assert len(train_rows) == summary["train"] and len(test_rows) == summary["test"] > 0
    assert validate_export(out) == []
    # the old config (both keys on one file) fails the check
    cfg["test_datasets"][0]["path"] = train
    Path(summary["config"]).write_text(yaml.safe_dump(cfg))
    assert any("same file" in p for p in validate_export(out))
    # a test row copied into the training file fails it too
    cfg["test_datasets"][0]["path"] = test
    Path(summary["config"]).write_text(yaml.safe_dump(cfg))
    Path(train).write_text(Path(train).read_text() + json.dumps(test_rows[0]) + "\n")
    assert any("both the training and the test file" in p for p in validate_export(out))
