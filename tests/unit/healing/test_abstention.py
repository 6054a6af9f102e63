"""Abstention is a flag beside the top-1 answer, tuned on validation rows to a precision target; a recognised crash
report is never answered ``no-crash``; another system's report takes the rule's class."""

import json

import numpy as np
from kforge.cli.main import main
from kforge.config import Paths
from kforge.healing.classifiers import UNKNOWN, choose_threshold, coverage_precision
from kforge.healing.model import system_answer, train_bundle
from kforge.registry import Tracker

from tests.unit.healing.test_other_kernels import BOOT, FREEBSD_GPF, FREEBSD_PAGE_FAULT, GVISOR_RACE


def test_threshold_meets_the_precision_target_or_abstains_on_all() -> None:
    conf = np.array([0.95, 0.9, 0.85, 0.6, 0.55, 0.5, 0.3])
    correct = np.array([True, True, True, True, False, True, False])
    t = choose_threshold(conf, correct, 0.8)
    cov, prec = coverage_precision(conf, correct, t)
    assert t == 0.5 and prec >= 0.8 and cov == 6 / 7          # the lowest threshold that keeps precision >= 0.8
    assert choose_threshold(conf, correct, 1.0) == 0.6        # a stricter target answers fewer rows
    never = choose_threshold(conf, np.zeros(7, dtype=bool), 0.8)
    assert coverage_precision(conf, np.zeros(7, dtype=bool), never)[0] == 0.0


def test_system_answer_rules_out_no_crash_and_lets_rules_name_foreign_reports() -> None:
    classes = ["kasan-use-after-free", "no-crash", "panic"]
    p = np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.7, 0.1, 0.2]])
    labels, conf = system_answer("arbitration", classes, [None, None, "panic"], [0.0, 0.0, 0.6], p,
                                 crash_found=[True, False, True], foreign=[False, False, True])
    assert labels[0] != "no-crash" and labels[1] == "no-crash"   # a report was found on row 0, none on row 1
    assert labels[2] == "panic" and conf[2] == 0.6                # unseen system: the rule answers
    assert UNKNOWN not in labels


def _tb(exc: str, msg: str, code: str) -> str:
    return (f'Traceback (most recent call last):\n  File "/work/{code}.py", line 3, in <module>\n    {code}()\n'
            f"{exc}: {msg}\n")


def _kernel(i: int, kind: str) -> str:
    if kind == "kasan-use-after-free":
        return (f"[ 1.{i}] BUG: KASAN: use-after-free in func{i % 7}+0x1/0x20 net/core/f{i}.c:10\n"
                f"[ 1.{i}] Read of size 8 at addr ffff8880{i:08x} by task syz/1\n")
    if kind == "null-ptr-deref-or-page-fault":
        return (f"[ 2.{i}] BUG: unable to handle page fault for address: ffff{i:012x}\n[ 2.{i}] #PF: supervisor read\n")
    return BOOT + f"[ 3.{i}] random: crng init done {i}\n"


def test_classify_answers_top1_with_an_abstain_flag(tmp_path, capsys) -> None:
    py = [{"id": f"p{i}", "traceback": _tb(*[("KeyError", "'price'", "load"), ("NameError", "name 'df' is not defined",
                                                                              "plot")][i % 2]),
           "label_root_cause": ["misunderstanding of data structure", "undefined variable"][i % 2], "fname": f"n{i}"}
          for i in range(24)]
    classes = ["kasan-use-after-free", "null-ptr-deref-or-page-fault", "no-crash"]
    kern = [{"id": f"k{i}", "log": _kernel(i, classes[i % 3]), "crash_class": classes[i % 3], "title": f"t{i}"}
            for i in range(30)]
    model = train_bundle({"python": (py, ("label_root_cause",), "fname"), "kernel": (kern, ("crash_class",), "title")},
                         kinds=("linear",))
    lm = model.models["python"]["label_root_cause"]
    assert 0.0 <= lm.val_coverage <= 1.0 and lm.precision_target == 0.8
    if lm.val_coverage > 0:
        assert lm.val_precision >= 0.8
    assert set(model.models["kernel"]["crash_class"].systems) == {"linux"}

    inputs = [{"id": "a", "traceback": _tb("KeyError", "'qty'", "load")},
              {"id": "b", "log": FREEBSD_PAGE_FAULT}, {"id": "c", "log": FREEBSD_GPF},
              {"id": "d", "log": GVISOR_RACE}, {"id": "e", "log": BOOT}]
    out = model.classify(inputs)
    for r in out:
        label = next(k for k in r if k.startswith("pred_"))[len("pred_"):]
        assert r[f"pred_{label}"] not in (None, UNKNOWN)
        assert isinstance(r[f"abstain_{label}"], bool) and 0.0 <= r[f"confidence_{label}"] <= 1.0
    kernel = {r["id"]: r["pred_crash_class"] for r in out if r["kind"] == "kernel"}
    assert kernel == {"b": "null-ptr-deref-or-page-fault", "c": "general-protection-fault",
                      "d": "kcsan-data-race", "e": "no-crash"}

    # the CLI writes the same rows and says how many each label answered at its threshold
    path = model.save(tmp_path / "m.pkl", tracker=Tracker(Paths.of(tmp_path / "h")))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in inputs))
    assert main(["--home", str(tmp_path / "h"), "healing", "classify", "--input", str(tmp_path / "in.jsonl"),
                 "--output", str(tmp_path / "out.jsonl"), "--model", str(path)]) == 0
    said = capsys.readouterr().out
    assert "python.label_root_cause: answered" in said and "tuned to precision 0.80" in said
    written = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["pred_crash_class"] for r in written if r["kind"] == "kernel"] == list(kernel.values())
