import json

import pytest
from kforge.cli.main import main
from kforge.errors import InputError
from kforge.feedback import add_feedback
from kforge.healing import feedback as _healing_feedback  # noqa: F401 - registers the schema
from kforge.healing.corpus import load_programs, run_source
from kforge.healing.fixes import apply_strategy
from kforge.healing.traceback import parse_traceback
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


def test_classify_with_a_saved_model(tmp_path):
    from kforge.healing.corpus import run_corpus
    from kforge.healing.datasets import CORPUS_LABELS
    from kforge.healing.model import train_bundle

    rows = [{**r, "group": r["program"]} for r in run_corpus(load_programs()[:24])]
    model = train_bundle({"python": (rows, CORPUS_LABELS[:1], "group")})
    path = model.save(tmp_path / "m.pkl")
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
