"""``kforge export --llm-score``: llm_score/llm_reason only on rows above the heuristic floor, scored
through the real HTTP client against kforge's server (scripted model), provenance in the summary."""

import json
from pathlib import Path

import polars as pl
import pytest
from kforge.cli.main import main
from kforge.commits.chains import build_chains
from kforge.commits.export import validate_export
from kforge.commits.quality import LLM_SCORE_TEMPLATE, llm_quality, parse_llm_score
from kforge.commits.tags import tag_commits
from kforge.config import Paths
from kforge.errors import InputError
from kforge.git.diffs import extract_diffs
from kforge.git.ingest import ingest_repository
from kforge.llm.scripted import ScriptedBackend
from kforge.llm.server import LLMServer
from kforge.storage import Warehouse


@pytest.mark.parametrize(("text", "score", "reason"), [
    ("score: 4\nreason: clear subject", 4, "clear subject"),
    ("Score = 2. Reason - vague body", 2, ""),               # reason on the same line is not a reason line
    ("I would rate it 5/5 because it explains why.", 5, "I would rate it 5/5 because it explains why."),
    ("3\nGood.", 3, "3"),
    ("This is a commit about 64 queues.", None, "This is a commit about 64 queues."),
    ("score: 9", None, ""),
])
def test_parse_llm_score(text, score, reason) -> None:
    s, why = parse_llm_score(text)
    assert (s, why) == (score, reason)


def _rows(qualities: list[float]) -> pl.DataFrame:
    n = len(qualities)
    return pl.DataFrame({"instruction": ["Write the patch."] * n, "input": [f"msg {i}" for i in range(n)],
                         "output": [f"diff {i}" for i in range(n)], "quality": qualities})


def test_only_rows_above_the_floor_are_asked() -> None:
    backend = ScriptedBackend(lambda s, u: "score: 2\nreason: short" if "msg 1" in u else "score: 5\nreason: ok")
    out, prov = llm_quality(_rows([0.9, 0.6, 0.2, 0.59]), backend, floor=0.6)
    assert out["llm_score"].to_list() == [5, 2, None, None]
    assert out["llm_reason"].to_list() == ["ok", "short", None, None]
    assert len(backend.calls) == 2 and prov["asked"] == 2 and prov["scored"] == 2
    assert prov["template_hash"] == LLM_SCORE_TEMPLATE.hash and prov["model"] == "scripted-1"
    with pytest.raises(InputError, match="--llm-floor"):
        llm_quality(_rows([0.5]), backend, floor=1.5)


def test_an_unparseable_answer_is_null_and_says_so() -> None:
    out, prov = llm_quality(_rows([0.9]), ScriptedBackend("I like turtles"), floor=0.0)
    assert out["llm_score"].to_list() == [None] and out["llm_reason"][0].startswith("unparsed answer")
    assert prov["asked"] == 1 and prov["scored"] == 0


@pytest.fixture()
def home(demo_repo: Path, kforge_home: Path) -> Path:
    wh = Warehouse(Paths.of(kforge_home).warehouse)
    ingest_repository(demo_repo, wh, name="demo")
    commits = wh.read_table("commits")
    wh.replace("commit_tags", tag_commits(commits))
    wh.replace("commit_chains", build_chains(commits))
    diffs, _ = extract_diffs(demo_repo, "demo", commits["sha"].to_list())
    wh.replace("commit_diffs", diffs)
    return kforge_home


def test_cli_export_llm_score_over_http(home: Path, tmp_path: Path, capsys) -> None:
    backend = ScriptedBackend("score: 3\nreason: fine")
    out = tmp_path / "x.jsonl"
    with LLMServer(backend) as srv:
        rc = main(["--home", str(home), "export", "standard", "--out", str(out), "--limit", "30", "--llm-score",
                   "--llm-floor", "0.8", "--backend", "ollama", "--base-url", srv.url, "--max-tokens", "16"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and validate_export(out) == []
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    above = [r for r in rows if r["quality"] >= 0.8]
    assert above and len(above) < len(rows)                       # the floor splits this sample
    assert all(r["llm_score"] == 3 and r["llm_reason"] == "fine" for r in above)
    assert all(r["llm_score"] is None and r["llm_reason"] is None for r in rows if r["quality"] < 0.8)
    assert len(backend.calls) == len(above) and backend.calls[0][2].max_tokens == 16
    assert summary["llm"]["backend"] == "ollama" and summary["llm"]["asked"] == len(above)


def test_cli_export_without_llm_score_has_no_llm_columns(home: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "y.jsonl"
    assert main(["--home", str(home), "export", "standard", "--out", str(out), "--limit", "5"]) == 0
    assert "llm_score" not in json.loads(out.read_text().splitlines()[0])


def test_cli_export_unreachable_llm_is_one_line_and_writes_nothing(home: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "z.jsonl"
    rc = main(["--home", str(home), "export", "standard", "--out", str(out), "--limit", "5", "--llm-score",
               "--llm-floor", "0", "--backend", "openai", "--base-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("kforge: error: cannot reach the LLM server") and err.count("\n") == 1
    assert not out.exists()


def test_validate_export_flags_an_out_of_range_llm_score(tmp_path: Path) -> None:
    p = tmp_path / "v.jsonl"
    row = {"id": "a", "mode": "standard", "instruction": "i", "input": "x", "output": "y", "repo": "r", "sha": "s",
           "date": "2024-01-01", "subsystem": "", "tags": [], "quality": 0.9, "patch_id": "p", "split": "train",
           "llm_score": 7, "llm_reason": "?"}
    p.write_text(json.dumps(row) + "\n")
    assert any("llm_score 7" in prob for prob in validate_export(p))
