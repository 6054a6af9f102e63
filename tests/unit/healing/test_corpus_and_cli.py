import json
from pathlib import Path

import pytest
from kforge.cli.main import main
from kforge.config import Paths
from kforge.errors import InputError
from kforge.feedback import add_feedback
from kforge.healing.corpus import load_programs, run_source
from kforge.healing.fixes import apply_strategy
from kforge.healing.traceback import parse_traceback
from kforge.registry import Tracker
from kforge.storage import Warehouse


def test_programs_have_labels_and_really_fail():
    progs = load_programs()
    assert len(progs) >= 40
    assert all(set(p.labels) == {"label_root_cause", "label_exception_type", "label_ml_pipeline"} for p in progs)
    prog = next(p for p in progs if p.name == "keyerror_counts")
    code, err = run_source(prog.source, prog.name)
    assert code != 0 and parse_traceback(err).exc_type == "KeyError"


def test_fix_strategy_applied_and_rerun():
    prog = next(p for p in load_programs() if p.name == "keyerror_config")
    _, err = run_source(prog.source, prog.name)
    patched = apply_strategy(prog.source, "guard-try", err, f"{prog.name}.py")
    assert patched is not None and "except KeyError" in patched
    assert apply_strategy(prog.source, "zero-guard", err, f"{prog.name}.py") is None
    assert run_source(patched, prog.name)[0] != 0       # masking the error only moves it (NameError on step)
    prog = next(p for p in load_programs() if p.name == "keyerror_nested_json")
    _, err = run_source(prog.source, prog.name)
    patched = apply_strategy(prog.source, "dict-get-default", err, f"{prog.name}.py")
    assert patched is not None and '.get("email")' in patched
    assert run_source(patched, prog.name)[0] == 0


def test_feedback_schema_validates(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    assert add_feedback("healing", {"kind": "fix", "error_class": "py-keyerror", "strategy": "guard-try", "success": "true"}, wh) == 1
    with pytest.raises(InputError, match="needs error_class"):
        add_feedback("healing", {"kind": "fix", "strategy": "guard-try"}, wh)
    with pytest.raises(InputError, match="needs 'log'"):
        add_feedback("healing", {"kind": "label", "label": "crash_class", "value": "x"}, wh)
    with pytest.raises(InputError, match="must be one of"):
        add_feedback("healing", {"kind": "oops"}, wh)


def test_cli_errors_are_clear(tmp_path, capsys):
    home = str(tmp_path / "home")
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"id": 1, "log": "x"}\nnot json\n')
    assert main(["--home", home, "healing", "classify", "--input", str(bad), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["--home", home, "healing", "classify", "--input", str(tmp_path / "nope.jsonl"),
                 "--output", str(tmp_path / "o.jsonl")]) == 2
    assert main(["--home", home, "healing", "evaluate"]) == 2
    assert "needs the real data" in capsys.readouterr().err
    tb = tmp_path / "tb.txt"
    tb.write_text("Traceback (most recent call last):\n  File \"a.py\", line 3, in <module>\nNameError: name 'y_pred' is not defined\n")
    assert main(["--home", home, "healing", "explain", str(tb)]) == 0
    out = capsys.readouterr().out
    assert "py-nameerror" in out and "y_pred" in out
    error_id = out.splitlines()[0].removeprefix("error id: ")
    assert error_id.startswith("err-") and len(error_id) == 16
    assert main(["--home", home, "healing", "explain", str(tb), "--id", "nb-7"]) == 0
    assert capsys.readouterr().out.startswith("error id: nb-7\n")

    # both calls are logged (no model yet: the matched rule, version "rules"), keyed by the error id,
    # so fix feedback on that id is joined to what kforge said
    import time

    from kforge.monitoring.feedback_join import joined

    wh = Warehouse(Paths(Path(home)).warehouse)
    assert wh.read("select item_key, field, prediction, model_version from prediction_items order by item_key").rows() \
        == [(error_id, "error_class", "py-nameerror", "rules"), ("nb-7", "error_class", "py-nameerror", "rules")]
    assert wh.read("select batch_ref from prediction_log").rows() == [("explain:tb.txt",)] * 2
    time.sleep(0.01)
    add_feedback("healing", {"kind": "fix", "error_id": "nb-7", "error_class": "py-nameerror", "strategy": "s",
                             "success": True}, wh)
    add_feedback("healing", {"kind": "fix", "error_id": error_id, "error_class": "py-keyerror", "strategy": "s",
                             "success": False}, wh)
    j = joined(wh).sort("feedback_id")
    assert j.select("model_version", "followed").rows() == [("rules", True), ("rules", False)]


def test_classify_with_a_saved_model(tmp_path):
    from kforge.healing.corpus import run_corpus
    from kforge.healing.datasets import CORPUS_LABELS
    from kforge.healing.model import train_bundle

    rows = [{**r, "group": r["program"]} for r in run_corpus(load_programs()[:24])]
    model = train_bundle({"python": (rows, CORPUS_LABELS[:1], "group")})
    path = model.save(tmp_path / "m.pkl", tracker=Tracker(Paths.of(tmp_path / "h")))
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps({"id": r["id"], "traceback": r["traceback"]}) for r in rows[:3]) + "\n"
                   + json.dumps({"id": "k1", "log": "[ 1.0] BUG: KASAN: use-after-free in foo+0x1/0x2"}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["--home", str(tmp_path / "h"), "healing", "classify", "--input", str(inp), "--output", str(out),
                 "--model", str(path)]) == 0
    res = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in res] == [r["id"] for r in rows[:3]] + ["k1"]
    assert "pred_label_root_cause" in res[0] and "confidence" in res[0] and "params" in res[0]
    assert res[3]["rule_id"] == "kasan-uaf" and res[3]["pred_crash_class"] == "kasan-use-after-free"

    # explain with the same model logs the model's predictions for that error id (version "file")
    tb = tmp_path / "tb.txt"
    tb.write_text(rows[0]["traceback"])
    assert main(["--home", str(tmp_path / "h"), "healing", "explain", str(tb), "--model", str(path),
                 "--id", "x1"]) == 0

    wh = Warehouse(Paths(tmp_path / "h").warehouse)
    logged = wh.read("select field, model_version from prediction_items where item_key = 'x1'").rows()
    assert ("label_root_cause", "file") in logged
