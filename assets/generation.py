"""Asset group ``generation``: the corpus, then one run training level 1, the NNGen index and the
level-2 LM (+ LoRA adapters), evaluated against NNGen on the same held-out rows and gated.

Thin: library code lives in ``kforge.generation``.
"""

import tempfile
from pathlib import Path

import dagster as dg
import polars as pl
from kforge.dagster_io import MlflowResource, WarehouseResource
from kforge.dagster_io.metadata import metrics_md, table_md
from kforge.generation.corpus import build_corpus, check_time_split, feedback_examples, load_from_warehouse
from kforge.generation.level1 import Level1Config
from kforge.generation.lm import TinyLMConfig
from kforge.generation.pipeline import GenerationConfig, run_generation
from kforge.generation.train import TrainConfig
from kforge.git.ingest import registered_repositories
from kforge.registry import data_version
from kforge.scale.executor import WAREHOUSE_WRITER_TAGS
from pydantic import Field

GROUP = "generation"


class CorpusConfig(dg.Config):
    val_frac: float = Field(default=0.1, description="Share of commits (by time, after train) used for calibration.")
    test_frac: float = Field(default=0.1, description="Most recent share of commits held out for evaluation.")
    max_rows: int = Field(default=0, description="Keep only the most recent N cleaned commits (0 = all).")


@dg.asset(op_tags=WAREHOUSE_WRITER_TAGS, group_name=GROUP, deps=["commit_diffs", "commits"],
          check_specs=[dg.AssetCheckSpec("split_by_time", asset="generation_corpus"),
                       dg.AssetCheckSpec("test_set_large_enough", asset="generation_corpus")],
          description="Cleaned generation corpus (bots and near-duplicate messages dropped), split by time.")
def generation_corpus(config: CorpusConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    corpus, rep = build_corpus(load_from_warehouse(wh), val_frac=config.val_frac, test_frac=config.test_frac,
                               feedback=feedback_examples(wh), max_rows=config.max_rows)
    wh.replace("generation_corpus", corpus)
    ok, why = check_time_split(corpus)
    by = corpus.group_by("split", "source").len().sort("split")
    return dg.MaterializeResult(
        metadata={"dagster/row_count": corpus.height, **{k: str(v) if isinstance(v, str) else v for k, v in rep.as_dict().items()},
                  "splits": table_md(by), "data_version": data_version(corpus.drop("ts"))},
        check_results=[dg.AssetCheckResult(check_name="split_by_time", passed=ok, metadata={"detail": why}),
                       dg.AssetCheckResult(check_name="test_set_large_enough", passed=rep.test >= 20,
                                           metadata={"test_rows": rep.test})])


class GenerationTrainConfig(dg.Config):
    backbone: str = Field(default="scratch", description="scratch (BPE + small transformer) or smollm2 (LoRA on SmolLM2-135M).")
    device: str = Field(default="cpu", description="cpu or cuda.")
    steps: int = Field(default=40, description="Optimizer steps for the LM (CPU smoke default; use `kforge train generation` or a GPU for real runs).")
    batch_size: int = Field(default=8, description="Sequences per micro-batch.")
    grad_accum: int = Field(default=1, description="Micro-batches per optimizer step.")
    amp: bool = Field(default=False, description="Mixed precision (bf16 on CPU/Ampere+, fp16 + loss scaling otherwise).")
    d_model: int = Field(default=128, description="Width of the from-scratch transformer.")
    n_layers: int = Field(default=2, description="Layers of the from-scratch transformer.")
    vocab_size: int = Field(default=2000, description="BPE vocabulary size.")
    max_len: int = Field(default=320, description="Tokens per training sequence.")
    eval_rows: int = Field(default=60, description="Held-out rows generated for the metrics.")
    adapter_families: int = Field(default=1, description="LoRA adapters for the N largest subsystem families.")
    adapter_steps: int = Field(default=10, description="Optimizer steps per LoRA adapter.")
    calib_rows: int = Field(default=40, description="Validation rows generated to calibrate the confidence.")
    max_minutes: float = Field(default=0.0, description="Stop LM training after this many minutes (0 = no limit).")
    level1_estimators: int = Field(default=40, description="Boosting rounds per level-1 head.")


@dg.multi_asset(
    specs=[dg.AssetSpec("generation_level1", group_name=GROUP, deps=["generation_corpus"],
                        description="Gradient boosting: subsystem, change type, complexity (calibrated)."),
           dg.AssetSpec("generation_retrieval", group_name=GROUP, deps=["generation_corpus"],
                        description="NNGen nearest-neighbour index: baseline and level-2 context."),
           dg.AssetSpec("generation_lm", group_name=GROUP, deps=["generation_level1", "generation_retrieval"],
                        description="Level-2 causal LM (+ per-family LoRA adapters), registered and gated.")],
    check_specs=[dg.AssetCheckSpec("beats_majority_baseline", asset="generation_level1"),
                 dg.AssetCheckSpec("beats_nngen_baseline", asset="generation_lm"),
                 dg.AssetCheckSpec("loss_fell", asset="generation_lm")],
    can_subset=False,
)
def generation_models(context: dg.AssetExecutionContext, config: GenerationTrainConfig, warehouse: WarehouseResource,
                      mlflow: MlflowResource):
    from kforge.generation.tracking import failed_checks, gate, log_run

    wh = warehouse.get()
    corpus = wh.read_table("generation_corpus")
    cfg = GenerationConfig(
        backbone=config.backbone,
        lm=TinyLMConfig(vocab_size=config.vocab_size, d_model=config.d_model, n_layers=config.n_layers,
                        n_heads=4, max_len=config.max_len),
        train=TrainConfig(steps=config.steps, batch_size=config.batch_size, grad_accum=config.grad_accum,
                          device=config.device, amp=config.amp, max_minutes=config.max_minutes),
        level1=Level1Config(n_estimators=config.level1_estimators),
        eval_rows=config.eval_rows, adapter_families=config.adapter_families, adapter_steps=config.adapter_steps,
        calib_rows=config.calib_rows)
    repos = {r: p for r, p in registered_repositories(wh).items() if p.exists()}
    tracker = mlflow.tracker()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_generation(corpus, cfg, Path(tmp), repos, log=context.log.info)
        logged = log_run(tracker, result, data_version=data_version(corpus.drop("ts")),
                         dagster_run_id=context.run.run_id)
        decision = gate(tracker, logged, result, corpus.filter(pl.col("split") == "test"))
    from kforge.generation.monitoring import set_diff_reference

    set_diff_reference(wh, logged.lm_version, corpus)
    m = result.metrics
    common = {"mlflow_run_id": logged.run_id}
    yield dg.MaterializeResult(asset_key="generation_level1", metadata={
        **common, "model_version": logged.level1_version,
        "metrics": metrics_md({k: v for k, v in m.items() if k.startswith("l1_")})})
    yield dg.MaterializeResult(asset_key="generation_retrieval", metadata={
        **common, "index_rows": len(result.bundle.index),
        "metrics": metrics_md({k: v for k, v in m.items() if "nngen" in k})})
    yield dg.MaterializeResult(asset_key="generation_lm", metadata={
        **common, "model_version": logged.lm_version, "adapters": str(logged.adapter_versions),
        "adapter_gates": dg.MetadataValue.json({f: {k: v for k, v in g.items()}
                                                for f, g in result.adapter_gates.items()}),
        "metrics": metrics_md({k: v for k, v in m.items() if k.startswith(("test_", "train_"))}),
        "samples": table_md(result.samples.select("reference", "lm", "nngen", "confidence"), 10),
        **decision.as_metadata()})
    yield dg.AssetCheckResult(check_name="beats_majority_baseline", asset_key="generation_level1",
                              passed=m["l1_diff_subsystem_acc"] > m["l1_majority_subsystem_acc"],
                              metadata={"subsystem_acc": m["l1_diff_subsystem_acc"],
                                        "majority_acc": m["l1_majority_subsystem_acc"]})
    failed = failed_checks(m)
    yield dg.AssetCheckResult(check_name="beats_nngen_baseline", asset_key="generation_lm", passed=not failed,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"failed": ", ".join(failed) or "none", "lm_bleu_norm": m["test_lm_bleu_norm"],
                                        "nngen_bleu_norm": m["test_nngen_bleu_norm"], "lm_rouge_l": m["test_lm_rouge_l"],
                                        "nngen_rouge_l": m["test_nngen_rouge_l"]})
    yield dg.AssetCheckResult(check_name="loss_fell", asset_key="generation_lm",
                              passed=m["train_loss_last"] < m["train_loss_first"],
                              metadata={"first": m["train_loss_first"], "last": m["train_loss_last"]})


defs = dg.Definitions(assets=[generation_corpus, generation_models])
