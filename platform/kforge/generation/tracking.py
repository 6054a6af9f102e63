"""Logging a generation run to MLflow (experiment ``kforge/generation``) and registering it.

Registered: ``kforge-generation-lm`` (pytorch flavour; tokenizer and config as extra files; the
whole inference bundle as the run's ``bundle`` artifact), ``kforge-generation-level1`` (pyfunc)
and one ``kforge-generation-lora-<family>`` per adapter (versioned apart from the base).
The gate promotes the LM only if it beats the champion on the same test rows and beats NNGen.
"""

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kforge.generation.bundle import Bundle
from kforge.generation.pipeline import GenerationResult
from kforge.registry import GateDecision, Tracker

LM_NAME = "kforge-generation-lm"
L1_NAME = "kforge-generation-level1"
GATE_METRIC = "test_lm_bleu_norm"
_PIP = ["torch==2.13.0", "tokenizers", "numpy", "polars", "scikit-learn==1.9.1", "xgboost-cpu==3.2.0"]


class Level1Pyfunc:
    """MLflow pyfunc wrapper: the level-1 model over a frame with a ``diff`` or ``issue`` column."""

    def __new__(cls) -> Any:
        import mlflow.pyfunc

        class _Model(mlflow.pyfunc.PythonModel):
            def load_context(self, context: Any) -> None:
                import pickle

                with open(context.artifacts["level1"], "rb") as fh:
                    self.model = pickle.load(fh)  # noqa: S301

            def predict(self, context, model_input, params=None):  # untyped: MLflow reads hints as a schema
                return self.model.predict_frame(model_input)

        return _Model()


@dataclass
class Logged:
    run_id: str
    lm_version: int
    level1_version: int
    adapter_versions: dict[str, int] = field(default_factory=dict)


def failed_checks(m: dict[str, float]) -> list[str]:
    """Evaluation gates: held-out only, enough rows, NNGen beaten on B-Norm and ROUGE-L."""
    out = []
    if m.get("test_rows", 0) < 20:
        out.append("test_set_too_small")
    if m.get("test_lm_bleu_norm", 0) <= m.get("test_nngen_bleu_norm", 0):
        out.append("lm_not_better_than_nngen_bleu_norm")
    if m.get("test_lm_rouge_l", 0) <= m.get("test_nngen_rouge_l", 0):
        out.append("lm_not_better_than_nngen_rouge_l")
    return out


def log_run(tracker: Tracker, result: GenerationResult, *, data_version: str, dagster_run_id: str = "",
            asset_key: str = "generation_lm", corpus_report: dict[str, Any] | None = None) -> Logged:
    import mlflow
    import mlflow.pytorch
    from mlflow.models import infer_signature

    b = result.bundle
    with tracker.run("generation", "generation", dagster_run_id=dagster_run_id, asset_key=asset_key,
                     data_version=data_version, tags={"backbone": b.backbone.kind}) as run:
        mlflow.log_params({k: str(v)[:250] for k, v in result.params.items()})
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items() if np.isfinite(v)})
        for h in result.history.history:
            mlflow.log_metric("train_loss", h["loss"], step=int(h["step"]))
        if corpus_report:
            mlflow.log_dict(corpus_report, "corpus_report.json")
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            result.samples.write_csv(t / "test_samples.csv")
            mlflow.log_artifact(str(t / "test_samples.csv"))
            (t / "test_shas.json").write_text(json.dumps(result.test_shas))
            mlflow.log_artifact(str(t / "test_shas.json"))
            bdir = b.save(t / "bundle")
            mlflow.log_artifacts(str(bdir), "bundle")
            example = np.asarray([[b.backbone.eos_id] * 8], dtype=np.int64)
            model = b.backbone.model
            extra = [str(p) for p in (bdir / "backbone").glob("*.json")] if (bdir / "backbone").exists() else None
            import torch

            with torch.no_grad():
                out = model(torch.as_tensor(example))
            out = out.logits if hasattr(out, "logits") else out
            sig = infer_signature(example, out.numpy())
            # saved locally, then logged under the run so runs:/<id>/lm is what the registry points at
            mlflow.pytorch.save_model(model, str(t / "lm"), pip_requirements=_PIP, signature=sig, input_example=example,
                                      extra_files=extra, export_model=False, serialization_format="pickle")
            mlflow.log_artifacts(str(t / "lm"), "lm")
            mlflow.pyfunc.save_model(str(t / "level1"), python_model=Level1Pyfunc(),
                                     artifacts={"level1": str(bdir / "level1.pkl")}, pip_requirements=_PIP,
                                     input_example=pl.DataFrame({"diff": ["diff --git a/x.c b/x.c\n+int a;\n"]}).to_pandas())
            mlflow.log_artifacts(str(t / "level1"), "level1")
        run_id = run.info.run_id
    adapters = {}
    if b.adapters_dir is not None:
        for fam_dir in sorted(p for p in b.adapters_dir.iterdir() if p.is_dir()):
            with tracker.run("generation", f"lora-{fam_dir.name}", dagster_run_id=dagster_run_id, asset_key="generation_adapters",
                             data_version=data_version, tags={"base_run_id": run_id, "family": fam_dir.name}) as arun:
                ah = result.adapters.get(fam_dir.name)
                if ah is not None:
                    mlflow.log_metrics({"train_loss_first": ah.first_loss(), "train_loss_last": ah.last_loss()})
                gate = result.adapter_gates.get(fam_dir.name, {})
                mlflow.log_metrics({k: float(v) for k, v in gate.items() if k not in ("kept", "reason")})
                if gate:
                    mlflow.set_tags({"gate_kept": str(gate["kept"]), "gate_reason": gate["reason"]})
                mlflow.log_artifacts(str(fam_dir), "adapter")
            adapters[fam_dir.name] = tracker.register(arun.info.run_id, "adapter", f"kforge-generation-lora-{fam_dir.name}",
                                                      tags={"base_run_id": run_id})
    lm_v = tracker.register(run_id, "lm", LM_NAME, tags={"backbone": b.backbone.kind})
    l1_v = tracker.register(run_id, "level1", L1_NAME)
    return Logged(run_id, lm_v, l1_v, adapters)


def champion_bundle(tracker: Tracker, name: str = LM_NAME, alias: str = "champion") -> tuple[Bundle, int] | None:
    """Download the bundle of the model version behind ``alias`` (None when there is none)."""
    from kforge.registry.aliases import get_alias

    mv = get_alias(tracker.client(), name, alias)
    if mv is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="kforge-gen-"))
    local = tracker.client().download_artifacts(mv.run_id, "bundle", str(tmp))
    return Bundle.load(Path(local)), int(mv.version)


def _champion_level1(tracker: Tracker) -> Any:
    import pickle

    from kforge.registry.aliases import get_alias

    mv = get_alias(tracker.client(), L1_NAME, "champion")
    if mv is None:
        return None
    local = tracker.client().download_artifacts(mv.run_id, "bundle/level1.pkl", tempfile.mkdtemp(prefix="kforge-l1-"))
    with open(local, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own artifact


def gate(tracker: Tracker, logged: Logged, result: GenerationResult, test: pl.DataFrame) -> GateDecision:
    """Score the current champion on the same test rows, then apply the gate."""
    from kforge.generation import evaluate

    champ = champion_bundle(tracker)
    champ_score = None
    if champ is not None:
        rows = test.filter(pl.col("sha").is_in(result.test_shas))
        d = evaluate.draft_messages(champ[0].backbone, champ[0].level1, champ[0].index, rows["diff"].to_list())
        from kforge.generation.metrics import bleu_norm

        champ_score = bleu_norm(d.subjects, rows["subject"].to_list())
    l1_champ = _champion_level1(tracker)
    l1_score = None
    if l1_champ is not None:
        l1_score = l1_champ.evaluate(test.filter(pl.col("sha").is_in(result.test_shas)), "diff")["diff_subsystem_acc"]
    own = result.metrics["l1_diff_subsystem_acc"]
    tracker.gate(L1_NAME, logged.level1_version, metric="l1_diff_subsystem_acc", challenger_score=own,
                 champion_score=l1_score,
                 blocked_by=[] if own > result.metrics["l1_majority_subsystem_acc"] else ["level1_not_better_than_majority"])
    return tracker.gate(LM_NAME, logged.lm_version, metric=GATE_METRIC, challenger_score=result.metrics[GATE_METRIC],
                        champion_score=champ_score, blocked_by=failed_checks(result.metrics))
