"""The MLflow pyfunc flavour of the healing bundle (what ``kforge-healing`` versions hold).

Input: a frame with ``id`` and, per row, a kernel console ``log`` or a Python ``traceback``
(the other column empty). Output: one row per input row with a fixed schema, whatever labels
the bundle was trained on: ``id``, ``kind``, ``predictions`` (JSON label -> value),
``confidence``, ``rule_id``, ``root_cause``, ``suggested_fix``, ``params`` (JSON).

Example::

    model = mlflow.pyfunc.load_model("models:/kforge-healing@champion")
    model.predict(pd.DataFrame({"id": ["a"], "log": [""], "traceback": [tb]}))

The pickled :class:`~kforge.healing.model.HealingModel` travels as the model's ``bundle``
artifact (``model/artifacts/healing_model.pkl``), which ``kforge healing classify`` reads directly.
Its sha256 is recorded on the run when it is saved (:func:`save_pyfunc`). A file is unpickled only
once it matches the sha256 recorded on its run (the champion) or on any run of the home's registry
(``--model FILE``); see :mod:`kforge.registry.trusted`.
"""

import json
from pathlib import Path
from typing import Any

import pandas as pd

BUNDLE_FILE = "healing_model.pkl"
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "scikit-learn==1.9.1", "numpy==2.4.0", "pandas==2.3.3", "polars==2.1.0"]
OUTPUT_COLUMNS = ("id", "kind", "predictions", "confidence", "rule_id", "root_cause", "suggested_fix", "params")


def rows_of(frame: Any) -> list[dict[str, Any]]:
    """Input frame -> classify() rows (an empty ``log``/``traceback`` cell means absent)."""
    out = []
    for rec in frame.to_dict(orient="records"):
        row: dict[str, Any] = {"id": str(rec.get("id", ""))}
        for col in ("log", "traceback"):
            v = rec.get(col)
            if isinstance(v, str) and v:
                row[col] = v
        out.append(row)
    return out


def output_frame(preds: list[dict[str, Any]]) -> Any:
    """classify() rows -> the fixed-schema output frame."""
    import pandas as pd

    def one(p: dict[str, Any]) -> dict[str, Any]:
        labels = {k.removeprefix("pred_"): v for k, v in p.items() if k.startswith("pred_")}
        labels |= {k: v for k, v in p.items() if k.startswith(("abstain_", "confidence_"))}
        return {"id": str(p["id"]), "kind": p["kind"], "predictions": json.dumps(labels, sort_keys=True),
                "confidence": float(p.get("confidence") or 0.0), "rule_id": p.get("rule_id") or "",
                "root_cause": p.get("root_cause") or "", "suggested_fix": p.get("suggested_fix") or "",
                "params": json.dumps(p.get("params") or {}, sort_keys=True, default=str)}

    return pd.DataFrame([one(p) for p in preds], columns=list(OUTPUT_COLUMNS))


def _pyfunc_class() -> type:
    """Built lazily: importing mlflow.pyfunc costs seconds."""
    import mlflow.pyfunc

    class HealingPyfunc(mlflow.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            from kforge.healing.model import HealingModel
            from kforge.registry.trusted import registry_download

            # MLflow has already unpickled this pyfunc from the registry's own directory
            self.model = HealingModel.load(context.artifacts["bundle"], read=registry_download)

        def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:  # DataFrame: MLflow infers no schema from it
            return output_frame(self.model.classify(rows_of(model_input)))

    return HealingPyfunc


def save_pyfunc(model: Any, bundle: Path, out: Path) -> Path:
    """Write an MLflow pyfunc model directory for ``model`` (already saved at ``bundle``) to ``out``,
    and record the bundle's sha256 on the active MLflow run (the release path's run)."""
    import mlflow.pyfunc
    import pandas as pd
    from kforge.registry.trusted import record
    from mlflow.models import infer_signature

    record(bundle, BUNDLE_FILE)

    example = pd.DataFrame({
        "id": ["kernel-1", "python-1"],
        "log": ["[  1.0] BUG: KASAN: use-after-free in foo+0x1/0x2 net/core/foo.c:10\n"
                "[  1.1] Read of size 8 at addr ffff888000000000 by task a/1\n", ""],
        "traceback": ["", "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n"
                          "    row['price']\nKeyError: 'price'\n"],
    })
    output = output_frame(model.classify(rows_of(example)))
    mlflow.pyfunc.save_model(str(out), python_model=_pyfunc_class()(), artifacts={"bundle": str(bundle)},
                             pip_requirements=PIP_REQUIREMENTS, input_example=example,
                             signature=infer_signature(example, output))
    return out


def load_bundle_dir(model_dir: Path) -> Any:
    """The bundle inside a local copy of a ``kforge-healing`` model directory that the release path
    has just downloaded from the registry (older versions kept it at the top of the directory)."""
    from kforge.errors import InputError
    from kforge.healing.model import HealingModel
    from kforge.registry.trusted import registry_download

    for path in (model_dir / "artifacts" / BUNDLE_FILE, model_dir / BUNDLE_FILE):
        if path.exists():
            return HealingModel.load(path, read=registry_download)
    raise InputError(f"{model_dir}: no healing model bundle")


def load_run_bundle(tracker: Any, run_id: str) -> Any:
    """The pickled bundle inside a run's pyfunc model (older runs logged it at ``model/`` directly),
    read from the project's own tracking store only. It must match the sha256 that the run recorded
    (runs from before digests were recorded are accepted as registry artifacts)."""
    import mlflow.artifacts
    from kforge.errors import InputError
    from kforge.healing.model import HealingModel
    from kforge.registry.trusted import reader

    last: Exception | None = None
    for rel in (f"model/artifacts/{BUNDLE_FILE}", f"model/{BUNDLE_FILE}"):
        try:
            local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{rel}", tracking_uri=tracker.tracking_uri)
        except Exception as exc:  # noqa: BLE001 - try the older layout next
            last = exc
            continue
        return HealingModel.load(local, read=reader(tracker, run_id, legacy_ok=True))
    raise InputError(f"run {run_id}: no healing model bundle ({last})")


def load_champion(tracker: Any, name: str = "kforge-healing") -> Any | None:
    """The champion's bundle (what ``kforge healing classify`` uses), or None without a champion."""
    champ = tracker.champion(name)
    return None if champ is None else load_run_bundle(tracker, champ.run_id)
