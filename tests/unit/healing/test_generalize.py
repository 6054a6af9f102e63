"""The classifier's ``generalizes`` gate: leave one source (notebook platform, kernel OS) out."""

from pathlib import Path

import pytest
from kforge.healing import model as healing_model
from kforge.healing.config import HealingConfig
from kforge.healing.datasets import KERNEL, PYTHON, load_task
from kforge.healing.generalize import leave_one_source_out, source_of
from kforge.healing.report import format_generalization
from kforge.healing.specs import CLASSIFIER
from kforge.healing.train import classifier_candidate
from kforge.registry.gates import GENERALIZES, Check

CAUSES = {"KeyError": "misunderstanding of data structure", "NameError": "undefined variable",
          "FileNotFoundError": "file/path not found or exist"}
EXAMPLES = {"KeyError": "KeyError: '{w}'", "NameError": "NameError: name '{w}' is not defined",
            "FileNotFoundError": "FileNotFoundError: [Errno 2] No such file or directory: '{w}.csv'"}


def _rows(source: str, n: int) -> list[dict]:
    """Notebook tracebacks whose root cause follows the exception type; each source has its own words."""
    out = []
    for i in range(n):
        exc = list(CAUSES)[i % 3]
        word = f"{source}_var{i}"
        tb = (f"Traceback (most recent call last):\n  File \"{source}_{i}.py\", line {i + 1}, in <module>\n"
              f"    {word} = data[{i}]\n{EXAMPLES[exc].format(w=word)}\n")
        out.append({"id": f"{source}-{i}", "fname": f"{source}-nb{i // 2}.ipynb", "nb_source": source,
                    "traceback": tb, "label_root_cause": CAUSES[exc], "label_exception_type": exc,
                    "label_ml_pipeline": "data preparation", "group": f"{source}-nb{i // 2}"})
    return out


def test_no_source_no_gate_and_no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded corpus names no source, and a Linux-only kernel file has one judged-size source:
    nothing is trained, the gate is not run and does not block."""
    def no_training(*_a: object, **_k: object) -> None:
        raise AssertionError("a model was trained for a gate that cannot run")

    monkeypatch.setattr(healing_model, "train_bundle", no_training)
    corpus = [{k: v for k, v in r.items() if k != "nb_source"} for r in _rows("x", 30)]
    gen = leave_one_source_out({"python": (corpus, ("label_root_cause",), "group")}, CLASSIFIER)
    assert gen.check.passed is None and gen.table.height == 0 and "no row names its source" in gen.check.detail
    assert not CLASSIFIER.blocks(gen.check) and gen.metrics() == {} and gen.worst() == ""

    kernel = [{"id": f"l{i}", "log": "BUG: x", "title": f"t{i}", "os": "linux", "crash_class": "bug"} for i in range(30)]
    kernel.append({"id": "g0", "log": "panic: x", "title": "g", "os": "gVisor", "crash_class": "host-fatal-error"})
    gen = leave_one_source_out({"kernel": (kernel, ("crash_class",), "title")}, CLASSIFIER)
    assert gen.check.passed is None and not CLASSIFIER.blocks(gen.check)
    status = {r["source"]: (r["n_train"], r["n_test"], r["status"]) for r in gen.table.iter_rows(named=True)}
    assert status["gvisor"][:2] == (30, 1) and "held-out" in status["gvisor"][2]
    assert status["linux"][:2] == (1, 30) and "training" in status["linux"][2]
    assert "kernel:gvisor 1 rows" in gen.check.detail and "nothing to leave out" in gen.check.detail


def test_each_source_is_scored_by_a_model_that_never_saw_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[set[str]] = []
    real = healing_model.train_bundle

    def spy(tasks: dict, *a: object, **k: object) -> healing_model.HealingModel:
        seen.append({r["nb_source"] for rows, _, _ in tasks.values() for r in rows})
        return real(tasks, *a, **k)

    monkeypatch.setattr(healing_model, "train_bundle", spy)
    rows = _rows("kaggle", 24) + _rows("github", 24) + _rows("colab", 6)   # colab: too small to judge
    unsourced = [{**r, "nb_source": ""} for r in _rows("fb", 6)]            # never trained on, never held out
    gen = leave_one_source_out({"python": (rows + unsourced, ("label_root_cause",), "group")}, CLASSIFIER,
                               members=("linear",))
    judged = {r["source"]: r for r in gen.judged().iter_rows(named=True)}
    assert set(judged) == {"kaggle", "github"}
    assert sorted(map(sorted, seen)) == [["colab", "github"], ["colab", "kaggle"]]   # each without its held-out source
    assert judged["kaggle"]["n_test"] == 24 and judged["kaggle"]["n_train"] == 30
    # the exception type carries the cause across sources, whatever words each source uses
    assert all(r["model_accuracy"] >= 0.9 for r in judged.values())
    c = gen.check
    assert c.ran and c.numbers["groups"] == 2.0
    deltas = {s: r["model_accuracy"] - r["tfidf_lr_accuracy"] for s, r in judged.items()}
    assert c.passed == all(d > 0 for d in deltas.values())
    assert c.numbers["worst_delta"] == pytest.approx(min(deltas.values()), abs=1e-4)
    assert gen.worst() == f"python:{min(deltas, key=deltas.__getitem__)}"
    m = gen.metrics()
    assert m["generalizes_accuracy_python_kaggle"] == judged["kaggle"]["model_accuracy"]
    assert m["generalizes_tfidf_lr_accuracy_python_github"] == judged["github"]["tfidf_lr_accuracy"]
    assert "python:colab" in format_generalization(gen) and "too few held-out rows" in format_generalization(gen)


def test_candidate_carries_the_gate_and_a_loss_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The release candidate holds the gate's outcome, per-source metrics and CSV; a baseline that wins
    on a held-out source fails the gate, and a failed ``generalizes`` blocks promotion."""
    from kforge.healing import scoring

    tasks = {"python": (_rows("kaggle", 24) + _rows("github", 24), ("label_root_cause",), "group")}
    monkeypatch.setattr(scoring, "baseline_accuracy", lambda *_a, **_k: 1.0)   # TF-IDF + LR perfect everywhere
    cand, _, metrics, gen = classifier_candidate(tasks, HealingConfig(members=("linear",)))
    check = next(c for c in cand.checks if c.name == GENERALIZES)
    assert check is gen.check and check.passed is False and "loses on" in check.detail
    assert CLASSIFIER.blocks(check) and not CLASSIFIER.blocks(Check(GENERALIZES, None))
    assert metrics["generalizes_tfidf_lr_accuracy_python_kaggle"] == 1.0
    assert "python:kaggle" not in cand.texts["evaluation/generalizes_source.csv"]   # kind and source are columns
    assert "kaggle" in cand.texts["evaluation/generalizes_source.csv"]


def test_the_shared_data_names_its_sources(shared_data: Path) -> None:
    """What the gate leaves out on the real files: JunoBench's two notebook platforms; the syzkaller
    file is Linux but for one gVisor log, so its kernel side cannot be judged."""
    notebooks = {source_of("python", r) for r in load_task(shared_data, PYTHON)}
    assert notebooks == {"github", "kaggle"}
    kernels = [source_of("kernel", r) for r in load_task(shared_data, KERNEL)]
    assert kernels.count("linux") > 500 and set(kernels) <= {"linux", "gvisor"}
