"""The generation family on the one release path: level 1, the LM and each kept LoRA adapter.

Three kinds of registered model, each its own :class:`Candidate`:

* ``kforge-generation-level1`` (:data:`L1_SPEC`): subsystem accuracy on the whole test split,
  against the majority label; its champion is re-scored on exactly those test commits.
* ``kforge-generation-lm`` (:data:`LM_SPEC`): B-Norm of the drafted subjects on the decoded test
  commits (``result.test_shas``), against NNGen on the same commits (B-Norm *and* ROUGE-L must
  beat it), like for like: both start their subject with level 1's predicted prefix, as the served
  model does, so the LM is not credited with level 1's work (the pair without the prefix is
  logged beside it, see ``generation.evaluate``). The registered directory holds the pytorch model and the whole inference ``bundle/``,
  so the champion is served (``kforge generate``) and re-scored from the registry.
* ``kforge-generation-lora-<family>`` (:func:`adapter_spec`): the family's held-out perplexity
  with the adapter against the base LM without it, on the family's test commits. Only adapters
  kept by their validation gate are released.

:func:`train_and_release` is the one training entry (the asset and ``kforge train generation``).
"""

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from kforge.errors import InputError
from kforge.generation.adapters import MIN_GATE_ROWS
from kforge.generation.bundle import Bundle, record_pickles
from kforge.generation.corpus import check_time_split
from kforge.generation.pipeline import GenerationConfig, GenerationResult, run_generation
from kforge.registry import Tracker
from kforge.registry.gates import (
    BEATS_CHAMPION,
    NO_FUTURE_FEATURES,
    SPLIT_HOLDS,
    TEST_SIZE,
    Check,
    GateSpec,
    ModelSpec,
    beats,
    size_check,
)
from kforge.registry.release import Candidate, ReleaseResult, Scored, release
from kforge.registry.trusted import registry_download

FAMILY = "generation"
LM_NAME = "kforge-generation-lm"
L1_NAME = "kforge-generation-level1"
ADAPTER_PREFIX = "kforge-generation-lora-"
MIN_TEST_ROWS = 20
LOSS_FELL = "loss_fell"
_PIP = ["torch==2.13.0", "tokenizers", "numpy", "polars", "scikit-learn==1.9.1", "xgboost-cpu==3.2.0", "peft==0.21.2"]
_TIME_SPLIT = "time split: every held-out (val/test) commit is no earlier than every training commit"

L1_SPEC = ModelSpec(
    name=L1_NAME, family=FAMILY, asset_key="generation_level1", metric="l1_diff_subsystem_acc",
    baselines=("majority",), split="time", split_unit="commits", min_test_rows=MIN_TEST_ROWS, point_in_time=False,
    descriptions={
        SPLIT_HOLDS: _TIME_SPLIT + "; level 1 is fitted on train and calibrated on val only",
        TEST_SIZE: f"at least {MIN_TEST_ROWS} test commits behind l1_diff_subsystem_acc",
        beats("majority"): "l1_diff_subsystem_acc > l1_majority_subsystem_acc (the most frequent training "
                           "subsystem) on the same test commits",
        BEATS_CHAMPION: "l1_diff_subsystem_acc > the champion's, re-scored from the registry on the same test "
                        "commits (decides promotion)",
    })

LM_SPEC = ModelSpec(
    name=LM_NAME, family=FAMILY, asset_key="generation_lm", metric="test_lm_bleu_norm",
    baselines=("nngen",), split="time", split_unit="commits", min_test_rows=MIN_TEST_ROWS,
    extra_gates=(GateSpec(LOSS_FELL, "train_loss_last < train_loss_first (WARN only: the LM learned something)",
                          blocking=False),),
    descriptions={
        SPLIT_HOLDS: _TIME_SPLIT,
        NO_FUTURE_FEATURES: "the retrieval context (NNGen index, prompt neighbours) holds training commits only, "
                            "none of the decoded test commits",
        TEST_SIZE: f"at least {MIN_TEST_ROWS} decoded test commits behind test_lm_bleu_norm",
        beats("nngen"): "test_lm_bleu_norm > test_nngen_bleu_norm AND test_lm_rouge_l > test_nngen_rouge_l "
                        "on the same decoded test commits, both subjects starting with level 1's predicted prefix "
                        "(like for like; the pair without it, test_*_noprefix_*, is reported beside it)",
        BEATS_CHAMPION: "test_lm_bleu_norm > the champion's, decoded from the registry on the same test commits "
                        "with level 1's prefix, as the challenger (decides promotion)",
    })


def adapter_spec(family: str) -> ModelSpec:
    """The spec of one family's LoRA adapter (built per family at run time; its outcome is reported
    in ``generation_lm``'s metadata, not as declared asset checks)."""
    return ModelSpec(
        name=f"{ADAPTER_PREFIX}{family}", family=FAMILY, asset_key="generation_lm", metric="test_ppl_adapter",
        higher_is_better=False, baselines=("base",), split="time", split_unit="commits",
        min_test_rows=MIN_GATE_ROWS, point_in_time=False,
        descriptions={
            SPLIT_HOLDS: _TIME_SPLIT + "; the adapter was kept on validation perplexity only",
            TEST_SIZE: f"at least {MIN_GATE_ROWS} test commits of family {family}",
            beats("base"): f"test_ppl_adapter < test_ppl_base (the LM without the adapter) on family {family}'s "
                           "test commits",
        })


@dataclass
class GenerationRelease:
    """One training run and what the release path decided for each of its models
    (no releases when nothing was registered)."""

    result: GenerationResult
    level1: ReleaseResult | None = None
    lm: ReleaseResult | None = None
    adapters: dict[str, ReleaseResult] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, r in (("level1", self.level1), ("lm", self.lm), *((f"lora-{f}", r) for f, r in self.adapters.items())):
            if r is not None:
                out[name] = {"model": r.spec.name, "version": r.version, "decision": r.decision, "reason": r.reason}
        return out


# -- level 1 ---------------------------------------------------------------------------------------

class Level1Pyfunc:
    """MLflow pyfunc wrapper: the level-1 model over a frame with a ``diff`` or ``issue`` column."""

    def __new__(cls) -> Any:
        import mlflow.pyfunc

        class _Model(mlflow.pyfunc.PythonModel):
            def load_context(self, context: Any) -> None:
                from kforge.registry.trusted import registry_download, unpickle

                # MLflow has already unpickled this pyfunc from the registry's own directory
                self.model = unpickle(Path(context.artifacts["level1"]), "level1.pkl", registry_download)

            def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:  # DataFrame: MLflow infers no schema from it
                return self.model.predict_frame(model_input)

        return _Model()


def _load_level1(model_dir: Path) -> Any:
    """Level 1 inside a registered model directory that the release path downloaded from the registry."""
    from kforge.registry.trusted import registry_download, unpickle

    found = sorted(Path(model_dir).rglob("level1.pkl"))
    if not found:
        raise InputError(f"{model_dir} holds no level1.pkl")
    return unpickle(found[0], "level1.pkl", registry_download)


def _rows(test: pl.DataFrame, shas: list[str]) -> pl.DataFrame:
    return test.filter(pl.col("sha").is_in(shas))


def level1_score(model: Any, rows: pl.DataFrame) -> float:
    """Subsystem accuracy from diffs: the level-1 metric, for the challenger and the champion alike."""
    return float(model.evaluate(rows, "diff")["diff_subsystem_acc"])


def level1_candidate(corpus: pl.DataFrame, result: GenerationResult) -> Candidate:
    test = corpus.filter(pl.col("split") == "test")
    keys = result.level1_test_shas
    rows = _rows(test, keys)
    m = result.metrics
    bundle_dir = _bundle_dir(result)
    ok, why = check_time_split(corpus)

    def save(d: Path) -> None:
        import mlflow.pyfunc

        from kforge.registry.trusted import record

        record(bundle_dir / "level1.pkl")  # on the release run: what --bundle and the champion are checked against
        mlflow.pyfunc.save_model(str(d), python_model=Level1Pyfunc(), artifacts={"level1": str(bundle_dir / "level1.pkl")},
                                 pip_requirements=_PIP,
                                 input_example=pl.DataFrame({"diff": ["diff --git a/x.c b/x.c\n+int a;\n"]}).to_pandas())

    def score(d: Path) -> Scored:
        return Scored(level1_score(_load_level1(d), rows), rows["sha"].to_list())

    return Candidate(
        L1_SPEC, train_table=corpus.drop("ts"), eval_keys=keys, score=m["l1_diff_subsystem_acc"],
        baselines={"majority": m["l1_majority_subsystem_acc"]},
        checks=[Check(SPLIT_HOLDS, ok, why), size_check(len(keys), MIN_TEST_ROWS)],
        params={k: v for k, v in result.params.items()
                if k.startswith("level1_") or k in ("train_rows", "val_rows", "test_rows")},
        metrics={k: v for k, v in m.items() if k.startswith("l1_") or k == "time_level1_s"},
        save_model=save, score_registered=score)


# -- the LM (with the whole inference bundle) -------------------------------------------------------

def _bundle_dir(result: GenerationResult) -> Path:
    if result.bundle_dir is None or not (result.bundle_dir / "meta.json").exists():
        raise InputError("the generation result has no saved bundle to release")
    return result.bundle_dir


def lm_score(bundle: Bundle, rows: pl.DataFrame) -> float:
    """B-Norm of the subjects ``bundle`` drafts for ``rows``: the challenger's ``test_lm_bleu_norm``
    computed the same way (same drafting with level 1's prefix, same metric) for a registered model."""
    from kforge.generation import evaluate, metrics

    d = evaluate.served_subjects(bundle.backbone, bundle.level1, bundle.index, rows["diff"].to_list())
    return float(metrics.bleu_norm(d.subjects, rows["subject"].to_list()))


def _save_lm(result: GenerationResult, d: Path) -> None:
    import mlflow.pytorch
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    b = result.bundle
    bdir = _bundle_dir(result)
    example = np.asarray([[b.backbone.eos_id] * 8], dtype=np.int64)
    with torch.no_grad():
        out = b.backbone.model(torch.as_tensor(example, device=b.backbone.device()))
    out = (out.logits if hasattr(out, "logits") else out).float().cpu()
    extra = [str(p) for p in (bdir / "backbone").glob("*.json")] if (bdir / "backbone").exists() else None
    mlflow.pytorch.save_model(b.backbone.model, str(d), pip_requirements=_PIP, signature=infer_signature(example, out.numpy()),
                              input_example=example, extra_files=extra, export_model=False,
                              serialization_format="pickle")
    shutil.copytree(bdir, d / "bundle")  # the whole inference bundle: served and re-scored from the registry
    record_pickles(d / "bundle")  # on the release run: what --bundle and the champion are checked against


def beats_nngen_check(m: dict[str, float]) -> Check:
    """The LM beats NNGen on B-Norm and ROUGE-L, both given level 1's prefix (the served
    configuration, and the one the champion is re-scored in); the pair without the prefix is
    reported in the detail and numbers, not gated."""
    lm_b, nn_b, lm_r, nn_r = (m["test_lm_bleu_norm"], m["test_nngen_bleu_norm"], m["test_lm_rouge_l"],
                              m["test_nngen_rouge_l"])
    bare = {k: m[f"test_{k}"] for k in ("lm_noprefix_bleu_norm", "nngen_noprefix_bleu_norm", "lm_noprefix_rouge_l",
                                        "nngen_noprefix_rouge_l")}
    return Check(beats("nngen"), lm_b > nn_b and lm_r > nn_r,
                 f"both given level 1's prefix: B-Norm {lm_b:.4f} vs NNGen {nn_b:.4f}, ROUGE-L {lm_r:.4f} vs NNGen "
                 f"{nn_r:.4f}; neither given it (not gated): B-Norm {bare['lm_noprefix_bleu_norm']:.4f} vs "
                 f"{bare['nngen_noprefix_bleu_norm']:.4f}, ROUGE-L {bare['lm_noprefix_rouge_l']:.4f} vs "
                 f"{bare['nngen_noprefix_rouge_l']:.4f}",
                 {"lm_bleu_norm": lm_b, "nngen_bleu_norm": nn_b, "lm_rouge_l": lm_r, "nngen_rouge_l": nn_r, **bare})


def lm_candidate(corpus: pl.DataFrame, result: GenerationResult) -> Candidate:
    m = result.metrics
    keys = result.test_shas
    test = corpus.filter(pl.col("split") == "test")
    rows = _rows(test, keys)
    ok, why = check_time_split(corpus)
    index_shas = set(result.bundle.index.rows["sha"].to_list())
    leaked = len(index_shas & set(keys))
    beats_nngen = beats_nngen_check(m)
    first, last = m["train_loss_first"], m["train_loss_last"]

    def score(d: Path) -> Scored:  # d: the champion, just downloaded from the registry by the release path
        return Scored(lm_score(Bundle.load(d / "bundle", read=registry_download), rows), rows["sha"].to_list())

    texts = {"test_samples.csv": result.samples.write_csv()}
    return Candidate(
        LM_SPEC, train_table=corpus.drop("ts"), eval_keys=keys, score=m["test_lm_bleu_norm"],
        baselines={"nngen": m["test_nngen_bleu_norm"]},
        checks=[Check(SPLIT_HOLDS, ok, why),
                Check(NO_FUTURE_FEATURES, leaked == 0,
                      f"{len(index_shas)} commits in the retrieval index, {leaked} of them among the decoded test "
                      "commits", {"index_rows": float(len(index_shas)), "leaked": float(leaked)}),
                size_check(len(keys), MIN_TEST_ROWS), beats_nngen,
                Check(LOSS_FELL, last < first, f"train loss {first:.3f} -> {last:.3f}",
                      {"first": first, "last": last})],
        params=result.params, metrics=m, texts=texts, tags={"backbone": result.bundle.backbone.kind},
        log_extra=lambda: _log_history(result),
        save_model=lambda d: _save_lm(result, d), score_registered=score)


def _log_history(result: GenerationResult) -> None:
    import mlflow

    for h in result.history.history:
        mlflow.log_metric("train_loss", h["loss"], step=int(h["step"]))


# -- LoRA adapters ----------------------------------------------------------------------------------

class AdapterPyfunc:
    """MLflow pyfunc wrapper: a bundle whose LM carries one family's adapter; drafts subjects for
    a frame with a ``diff`` column."""

    def __new__(cls) -> Any:
        import mlflow.pyfunc

        class _Model(mlflow.pyfunc.PythonModel):
            def load_context(self, context: Any) -> None:
                import json

                from kforge.generation.bundle import Bundle
                from kforge.registry.trusted import registry_download

                # MLflow has already unpickled this pyfunc from the registry's own directory
                self.bundle = Bundle.load(Path(context.artifacts["bundle"]), read=registry_download)
                self.family = json.loads(Path(context.artifacts["bundle"], "meta.json").read_text())["adapter_family"]

            def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:  # DataFrame: MLflow infers no schema from it
                from kforge.generation import evaluate
                from kforge.generation.adapters import adapter_for

                b = self.bundle
                tuned, _ = adapter_for(b.backbone, b.adapters_dir, self.family)
                return evaluate.draft_messages(tuned, b.level1, b.index, [str(x) for x in model_input["diff"]]).subjects

        return _Model()


def adapter_score(bundle: Bundle, family: str, rows: pl.DataFrame) -> float:
    """Perplexity of ``family``'s held-out examples under the bundle's LM with the family's adapter."""
    from kforge.generation.adapters import adapter_for
    from kforge.generation.pipeline import build_examples
    from kforge.generation.train import perplexity

    tuned, which = adapter_for(bundle.backbone, bundle.adapters_dir, family)
    if which != family:
        raise InputError(f"the registered model carries no loadable {family} adapter")
    return float(perplexity(tuned, build_examples(bundle.backbone, rows, bundle.index, self_in_index=False)))


def _adapter_bundle(result: GenerationResult, family: str, d: Path) -> Path:
    """A copy of the run's bundle with only ``family``'s adapter."""
    import json

    src = _bundle_dir(result)
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("adapters"))
    shutil.copytree(src / "adapters" / family, d / "adapters" / family)
    meta = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps({**meta, "adapter_family": family}, indent=1, default=str))
    return d


def adapter_candidate(corpus: pl.DataFrame, result: GenerationResult, family: str) -> Candidate:
    spec = adapter_spec(family)
    g = result.adapter_gates[family]
    keys = result.adapter_test_shas.get(family, [])
    rows = _rows(corpus.filter(pl.col("split") == "test"), keys)
    ok, why = check_time_split(corpus)

    def save(d: Path) -> None:
        import mlflow.pyfunc
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        with tempfile.TemporaryDirectory(prefix="kforge-lora-") as tmp:
            bdir = _adapter_bundle(result, family, Path(tmp) / "bundle")
            record_pickles(bdir)
            mlflow.pyfunc.save_model(str(d), python_model=AdapterPyfunc(), artifacts={"bundle": str(bdir)},
                                     pip_requirements=_PIP, signature=ModelSignature(
                                         inputs=Schema([ColSpec("string", "diff")]), outputs=Schema([ColSpec("string")])))

    def score(d: Path) -> Scored:
        found = sorted(Path(d).rglob("meta.json"))
        if not found:
            raise InputError(f"{d} holds no generation bundle")
        return Scored(adapter_score(Bundle.load(found[0].parent, read=registry_download), family, rows),
                      rows["sha"].to_list())

    ah = result.adapters.get(family)
    metrics = {k: float(v) for k, v in g.items() if k not in ("kept", "reason")}
    if ah is not None:
        metrics |= {"train_loss_first": ah.first_loss(), "train_loss_last": ah.last_loss()}
    return Candidate(
        spec, train_table=corpus.drop("ts"), eval_keys=keys, score=float(g["test_ppl_adapter"]),
        baselines={"base": float(g["test_ppl_base"])},
        checks=[Check(SPLIT_HOLDS, ok, f"{why}; kept on validation: {g['reason']}"), size_check(len(keys), MIN_GATE_ROWS)],
        params={**result.params, "adapter_family": family}, metrics=metrics, tags={"family": family},
        save_model=save, score_registered=score)


# -- the one training entry -------------------------------------------------------------------------

def release_generation(tracker: Tracker, corpus: pl.DataFrame, result: GenerationResult, *,
                       dagster_run_id: str = "") -> GenerationRelease:
    """Level 1, the LM and every kept adapter through the release path, each as its own candidate."""
    out = GenerationRelease(result)
    out.level1 = release(tracker, level1_candidate(corpus, result), dagster_run_id=dagster_run_id)
    out.lm = release(tracker, lm_candidate(corpus, result), dagster_run_id=dagster_run_id)
    for fam in sorted(f for f, g in result.adapter_gates.items() if g.get("kept")):
        out.adapters[fam] = release(tracker, adapter_candidate(corpus, result, fam), dagster_run_id=dagster_run_id)
    return out


def train_and_release(tracker: Tracker | None, corpus: pl.DataFrame, cfg: GenerationConfig, *,
                      repos: dict[str, Path] | None = None, dagster_run_id: str = "",
                      log: Callable[[str], None] = print) -> GenerationRelease:
    """Train level 1, NNGen and the LM (+ adapters) on ``corpus``, then release each model
    (``tracker=None``: train and evaluate only, register nothing)."""
    with tempfile.TemporaryDirectory(prefix="kforge-gen-") as tmp:
        result = run_generation(corpus, cfg, Path(tmp), repos, log=log)
        if tracker is None:
            return GenerationRelease(result)
        return release_generation(tracker, corpus, result, dagster_run_id=dagster_run_id)


def registered_bundle(tracker: Tracker, name: str = LM_NAME, alias: str = "champion") -> tuple[Bundle, int] | None:
    """The inference bundle inside the model version behind ``alias`` (None when there is none), checked
    against the sha256s its run recorded (versions from before digests were recorded are accepted as
    registry artifacts)."""
    import mlflow.artifacts

    from kforge.registry.aliases import get_alias
    from kforge.registry.trusted import reader

    mv = get_alias(tracker.client(), name, alias)
    if mv is None:
        return None
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"{mv.source}/bundle",
                                                dst_path=tempfile.mkdtemp(prefix="kforge-gen-"),
                                                tracking_uri=tracker.tracking_uri)
    return Bundle.load(Path(local), read=reader(tracker, mv.run_id, legacy_ok=True)), int(mv.version)
