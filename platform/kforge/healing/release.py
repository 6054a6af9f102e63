"""Train on a grouped training split, score on the held-out split, log to MLflow
(experiment ``kforge/healing``) and register ``kforge-healing`` (an MLflow pyfunc with a signature and
an input example, see :mod:`kforge.healing.pyfunc`) through the champion/challenger gate.

The champion is re-scored on the *same* held-out rows before the gate decides.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kforge.errors import InputError
from kforge.healing.classifiers import UNKNOWN
from kforge.healing.evaluate import scores
from kforge.healing.model import HealingModel, train_bundle
from kforge.healing.pyfunc import BUNDLE_FILE, save_pyfunc
from kforge.healing.rules import RuleEngine

MODEL_NAME = "kforge-healing"
PRIMARY = {"kernel": "crash_class", "python": "label_root_cause"}
MIN_TEST_ROWS = 10


@dataclass
class Release:
    model: HealingModel
    metrics: dict[str, float]
    run_id: str
    version: int
    gate: Any
    blocked_by: list[str]
    n_test: int


def grouped_split(rows: list[dict[str, Any]], group: str, test_share: float = 0.2, seed: int = 7) -> tuple[list[int], list[int]]:
    groups = sorted({str(r.get(group, i)) for i, r in enumerate(rows)})
    rng = np.random.default_rng(seed)
    test_groups = set(rng.choice(groups, size=max(1, int(round(len(groups) * test_share))), replace=False).tolist())
    te = [i for i, r in enumerate(rows) if str(r.get(group, i)) in test_groups]
    tr = [i for i, r in enumerate(rows) if str(r.get(group, i)) not in test_groups]
    return tr, te


def score_model(model: HealingModel, tests: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, (rows, labels) in tests.items():
        inputs = [{"id": str(i), ("log" if kind == "kernel" else "traceback"): r.get("log") if kind == "kernel" else r.get("traceback")}
                  for i, r in enumerate(rows)]
        preds = model.classify(inputs)
        for label in labels:
            keep = [i for i, r in enumerate(rows) if r.get(label) not in (None, "")]
            if not keep:
                continue
            y = [str(rows[i][label]) for i in keep]
            p = [str(preds[i].get(f"pred_{label}", UNKNOWN)) for i in keep]
            s = scores(y, p)
            out[f"test_{kind}_{label}_accuracy"] = s["accuracy"]
            out[f"test_{kind}_{label}_macro_f1"] = s["macro_f1"]
            out[f"test_{kind}_{label}_coverage"] = s["coverage"]
    return out


def train_and_register(tracker: Any, tasks: dict[str, tuple[list[dict[str, Any]], tuple[str, ...], str]],
                       data_version: str, dagster_run_id: str = "", asset_key: str = "healing_model",
                       extra_metrics: dict[str, float] | None = None) -> Release:
    train_tasks, tests = {}, {}
    for kind, (rows, labels, group) in tasks.items():
        tr, te = grouped_split(rows, group)
        train_tasks[kind] = ([rows[i] for i in tr], labels, group)
        tests[kind] = ([rows[i] for i in te], labels)
    rules = RuleEngine.default()
    model = train_bundle(train_tasks, rules)
    metrics = score_model(model, tests)
    kind0 = "kernel" if "kernel" in tasks else "python"
    gate_metric = f"test_{kind0}_{PRIMARY[kind0]}_accuracy"
    n_test = len(tests[kind0][0])
    base = baseline_accuracy(train_tasks[kind0][0], tests[kind0][0], PRIMARY[kind0])
    metrics[f"baseline_tfidf_lr_{kind0}_{PRIMARY[kind0]}_accuracy"] = base
    train_groups = {str(r.get(train_tasks[kind0][2])) for r in train_tasks[kind0][0]}
    metrics["group_overlap"] = float(sum(str(r.get(tasks[kind0][2])) in train_groups for r in tests[kind0][0]))
    blocked = []
    if metrics.get(gate_metric, 0.0) < base:
        blocked.append(f"does not beat the TF-IDF+LR baseline ({metrics.get(gate_metric, 0.0):.3f} < {base:.3f})")
    if metrics["group_overlap"]:
        blocked.append("held-out groups overlap the training groups")
    if n_test < MIN_TEST_ROWS:
        blocked.append(f"held-out set too small ({n_test} < {MIN_TEST_ROWS})")
    if gate_metric not in metrics:
        blocked.append(f"no held-out score for {gate_metric}")
    import mlflow

    with tracker.run("healing", "healing_model", dagster_run_id=dagster_run_id, asset_key=asset_key,
                     data_version=data_version, tags={"gate_metric": gate_metric}) as run:
        mlflow.log_params({"kinds": ",".join(tasks), "n_test": n_test,
                           **{f"mode_{k}_{lab}": lm.mode for k, d in model.models.items() for lab, lm in d.items()},
                           **{f"threshold_{k}_{lab}": round(lm.ensemble.threshold, 4) for k, d in model.models.items()
                              for lab, lm in d.items()}})
        mlflow.log_metrics({**metrics, **(extra_metrics or {})})
        with tempfile.TemporaryDirectory() as d:
            bundle = model.save(Path(d) / BUNDLE_FILE)
            mlflow.log_artifacts(str(save_pyfunc(model, bundle, Path(d) / "model")), artifact_path="model")
        run_id = run.info.run_id
    version = tracker.register(run_id, "model", MODEL_NAME)
    champion_score = None
    champ = tracker.champion(MODEL_NAME)
    if champ is not None:
        try:
            champion_score = score_model(load_run_bundle(tracker, champ.run_id), tests).get(gate_metric)
        except Exception:
            champion_score = None
    decision = tracker.gate(MODEL_NAME, version, metric=gate_metric, challenger_score=metrics.get(gate_metric, 0.0),
                            champion_score=champion_score, blocked_by=blocked)
    return Release(model, metrics, run_id, version, decision, blocked, n_test)


def baseline_accuracy(train: list[dict[str, Any]], test: list[dict[str, Any]], label: str) -> float:
    """TF-IDF + logistic regression on the raw text, same split: the named baseline."""
    from kforge.healing.classifiers import make_pipeline
    from kforge.healing.features import frame_of, record

    tr = [r for r in train if r.get(label) not in (None, "")]
    te = [r for r in test if r.get(label) not in (None, "")]
    if not te or len({str(r[label]) for r in tr}) < 2:
        return 0.0
    m = make_pipeline("tfidf_lr").fit(frame_of([record(r) for r in tr]), [str(r[label]) for r in tr])
    pred = m.predict(frame_of([record(r) for r in te]))
    return float(np.mean([p == str(r[label]) for p, r in zip(pred, te, strict=True)]))


def load_champion(tracker: Any) -> HealingModel | None:
    champ = tracker.champion(MODEL_NAME)
    if champ is None:
        return None
    return load_run_bundle(tracker, champ.run_id)


def load_run_bundle(tracker: Any, run_id: str) -> HealingModel:
    """The pickled bundle inside a run's pyfunc model (older runs logged it at ``model/`` directly),
    read from the project's own tracking store only."""
    import mlflow.artifacts

    last: Exception | None = None
    for rel in (f"model/artifacts/{BUNDLE_FILE}", f"model/{BUNDLE_FILE}"):
        try:
            local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{rel}", tracking_uri=tracker.tracking_uri)
        except Exception as exc:  # noqa: BLE001 - try the older layout next
            last = exc
            continue
        return HealingModel.load(local)
    raise InputError(f"run {run_id}: no healing model bundle ({last})")
