"""Malformed inputs for the user-facing commands, a full disk, and loopback-only servers."""

import re
import subprocess
from pathlib import Path

import polars as pl
import pytest
from kforge.cli.main import main
from kforge.config import Paths
from kforge.storage import Warehouse

from tests.reliability._helpers import ROOT, kforge


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "garbage.parquet").write_bytes(b"not parquet at all")
    pl.DataFrame({"a": [1], "b": ["x"]}).write_parquet(d / "wrong.parquet")
    (d / "garbage.jsonl").write_text('{"bad json\nnot a row\n')
    (d / "wrongschema.jsonl").write_text('{"foo": 1}\n')
    (d / "garbage.mbox").write_bytes(bytes(range(256)) * 8)
    (d / "notrepo").mkdir()
    (d / "notrepo" / "f").write_text("x")
    return d


CASES = [
    (["ingest", "{bad}/notrepo"], "is not a git repository"),
    (["ingest", "{bad}/garbage.parquet"], "is not a directory"),
    (["import-commits", "{bad}/garbage.parquet"], "is not a readable parquet file"),
    (["import-commits", "{bad}/wrong.parquet"], "lacks required commit columns"),
    (["feedback", "import", "acceptance", "{bad}/garbage.jsonl"], "not valid JSON"),
    (["feedback", "import", "acceptance", "{bad}/wrongschema.jsonl"], "unknown field(s) foo"),
    (["feedback", "import", "mixins", "{bad}/wrongschema.jsonl"], "nothing was written"),
    (["feedback", "add", "healing", "id=zzz", "worked=maybe"], "unknown field(s) id, worked"),
    (["feedback", "add", "mixins", "mixins=NoSuch,Other", "node_type=x", "outcome=success"], "unknown mixin 'NoSuch'"),
    (["ingest-list", "{bad}/garbage.mbox", "--project", "{bad}/notrepo"], "no patch e-mails found"),
    (["telemetry", "import-trace", "{bad}/garbage.jsonl"], "not valid JSON"),
    (["telemetry", "simulate", "nosuch", "--out", "{bad}/o.jsonl"], "unknown workload"),
    (["telemetry", "simulate", "steady", "--duration", "-5", "--out", "{bad}/o.jsonl"], "at least 10 seconds"),
    (["healing", "classify", "--input", "{bad}/garbage.jsonl", "--output", "{bad}/o.jsonl"], "not valid JSON"),
    (["healing", "explain", "{bad}/nope.txt"], "no such file"),
    (["mixins", "import", "{bad}/garbage.jsonl"], "not valid JSON"),
    (["mixins", "exercise", "--trials-per-pair", "-4"], "must be >= 0"),
    (["export", "standard", "--out", "{bad}/x.jsonl", "--min-quality", "7"], "within 0..1"),
    (["models", "promote", "kforge-nosuch", "3"], "no registered model named"),
    (["query", "select * from nosuchtable"], "query failed"),
    (["feedback", "add", "acceptance", "item_id=nosuchsha", "outcome=true", "repo=demo", "target=commit"], "unknown"),
    (["telemetry", "simulate", "steady", "--duration", "1e12", "--out", "{bad}/o.jsonl"], "duration"),
    (["materialize", "--select", "group:nosuch"], "nosuch"),
]


@pytest.mark.parametrize(("args", "message"), CASES)
def test_malformed_input_is_rejected_with_a_clear_message(kforge_home: Path, bad: Path, args: list[str], message: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--home", str(kforge_home), *[a.format(bad=bad) for a in args]])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "Traceback" not in err, err


def test_full_disk_reports_a_clear_error_and_corrupts_nothing(tmpfs: Path, demo_repo: Path) -> None:
    home = tmpfs / "home"
    wh = Warehouse(Paths.of(home).warehouse)
    wh.append_new("keep", pl.DataFrame({"k": list(range(100)), "v": ["x" * 40] * 100}), keys=["k"])
    res = kforge(home, "ingest", str(demo_repo), "--name", "demo")
    assert res.returncode == 2, res.stderr[-2000:]
    assert "no space left on the device holding the warehouse" in res.stderr
    assert "nothing already stored was changed" in res.stderr and "Traceback" not in res.stderr
    assert wh.count("keep") == 100  # what was there is intact and the file still opens
    assert wh.count("commits") in (0, wh.read("select count(distinct sha) n from commits")["n"][0]) if wh.has_table(
        "commits") else True
    subprocess.run(["mount", "-o", "remount,size=256m", str(tmpfs)], check=True)
    res = kforge(home, "ingest", str(demo_repo), "--name", "demo")
    assert res.returncode == 0, res.stderr[-2000:]
    assert wh.count("commits") == 600 == wh.read("select count(distinct sha) n from commits")["n"][0]
    assert wh.count("keep") == 100


def test_uis_bind_to_loopback_by_default() -> None:
    """Every server the Makefile and scripts start binds to 127.0.0.1 unless told otherwise."""
    texts = {p: p.read_text().replace("\\\n", " ") for p in [ROOT / "Makefile", *sorted((ROOT / "scripts").glob("*.sh"))]}
    starts = 0
    for path, text in texts.items():
        assert "0.0.0.0" not in text, path
        for line in text.splitlines():
            if re.search(r"(/dagster dev\b|/dagster-webserver\"? |/mlflow\"? server\b)", line):
                starts += 1
                assert re.search(r"(-h|--host)\s+(127\.0\.0\.1|\"\$HOST\")", line), (path, line)
    assert starts >= 4
    assert re.search(r"^DAGSTER_PORT=.*HOST=127\.0\.0\.1$|HOST=127\.0\.0\.1", texts[ROOT / "scripts" / "services.sh"],
                     re.M)
