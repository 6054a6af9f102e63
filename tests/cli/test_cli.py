"""The console script: commands run the library code and user mistakes exit 2 with a clear line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kforge.cli.main import main


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


def test_ingest_query_export(kforge_home: Path, demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(kforge_home, "ingest", str(demo_repo), "--name", "demo") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["commits_added"] == 600
    assert run(kforge_home, "query", "select count(*) as n from commits") == 0
    assert capsys.readouterr().out.strip().splitlines() == ["n", "600"]
    from kforge.config import Paths
    from kforge.dagster_io.instance import instance

    assert instance(Paths.of(kforge_home)).has_dynamic_partition("repositories", "demo")


@pytest.mark.parametrize(("args", "message"), [
    (["ingest", "/definitely/not/here"], "does not exist"),
    (["query", "drop table commits"], "read-only"),
    (["import-commits", "/nope.parquet"], "no such file"),
    (["export", "standard", "--out", "x.jsonl"], "missing"),
    (["feedback", "add", "nosuchfamily", "a=b"], "unknown feedback family"),
    (["materialize", "--select", "nosuchasset"], "invalid --select"),
    (["acceptance", "evaluate", "dpdk", "--dpdk-git", "/definitely/not/here"], "does not exist"),
    (["acceptance", "train", "--target", "email"], "no patch e-mails"),
    (["acceptance", "train"], "patch_features"),
])
def test_user_errors_are_clear(kforge_home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert run(kforge_home, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("kforge: error:") and message in err
    assert "Traceback" not in err


def test_acceptance_train_maps_into_the_assets_config() -> None:
    """`kforge acceptance train` and the acceptance assets build the same TrainConfig."""
    from dataclasses import fields

    from kforge.acceptance.train import TrainConfig
    from kforge.cli.acceptance import FIELDS, train_config
    from kforge.cli.main import build_parser

    from assets.acceptance import AcceptanceConfig

    assert set(FIELDS) == {f.name for f in fields(TrainConfig)}
    parse = build_parser().parse_args
    assert train_config(parse(["acceptance", "train"])) == TrainConfig() == AcceptanceConfig().train_config()
    cfg = train_config(parse(["acceptance", "train", "--cutoff", "2022-01-01", "--n-folds", "2", "--no-text",
                              "--min-test-rows", "40", "--test-fraction", "0.3"]))
    assert cfg == AcceptanceConfig(cutoff="2022-01-01", n_folds=2, use_text=False, min_test_rows=40,
                                   test_fraction=0.3).train_config()


def test_console_script_help() -> None:
    out = subprocess.run([sys.executable, "-m", "kforge.cli.main", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("ingest", "import-commits", "query", "materialize", "export", "demo-repo", "feedback"):
        assert cmd in out.stdout
