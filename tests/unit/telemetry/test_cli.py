import json

from kforge.cli.main import main


def test_cli_simulate_import_and_errors(tmp_path, capsys):
    home = str(tmp_path / "home")
    out = tmp_path / "h.jsonl"
    assert main(["--home", home, "telemetry", "simulate", "fragmenting", "--duration", "60", "--out", str(out)]) == 0
    assert main(["--home", home, "telemetry", "import-trace", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["samples_added"] == 60
    assert main(["--home", home, "telemetry", "import-trace", str(out)]) == 0      # idempotent
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["samples_added"] == 0
    assert main(["--home", home, "telemetry", "import-trace", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such trace file" in capsys.readouterr().err
    assert main(["--home", home, "telemetry", "simulate", "nope", "--out", str(out)]) == 2
    assert main(["--home", home, "telemetry", "evaluate", "--seeds", "1"]) == 2
    assert main(["--home", home, "telemetry", "train", "--model", "oom"]) == 2     # nothing stored yet
    assert "materialize memory_telemetry" in capsys.readouterr().err
    assert main(["--home", home, "telemetry", "train", "--model", "recommender"]) == 2
    assert "has no champion" in capsys.readouterr().err
    assert main(["--home", home, "telemetry", "monitoring"]) == 0
