"""Asset group ``generation``: the corpus, then one run training level 1, the NNGen index and the
level-2 LM (+ LoRA adapters), each model released (``kforge.generation.release``) against its
baseline and its champion on the same held-out commits.

Thin: library code lives in ``kforge.generation``.
"""

import dagster as dg
from kforge.dagster_io import MlflowResource, WarehouseResource
from kforge.dagster_io.materialize import TRIGGER_TAG
from kforge.dagster_io.metadata import metric_entries, table_md
from kforge.dagster_io.release import release_check_results, release_checks, release_metadata
from kforge.dagster_io.resources import TextEncoderResource
from kforge.generation.corpus import CorpusConfig as LibCorpusConfig
from kforge.generation.corpus import check_time_split, corpus_for
from kforge.generation.pipeline import GenerationConfig
from kforge.generation.release import L1_SPEC, LM_SPEC, train_and_release
from kforge.git.ingest import registered_repositories
from kforge.registry import data_version
from pydantic import Field

GROUP = "generation"


class CorpusConfig(dg.Config):
    val_frac: float = Field(default=0.1, description="Share of commits (by time, after train) used for calibration.")
    test_frac: float = Field(default=0.1, description="Most recent share of commits held out for evaluation.")
    max_rows: int = Field(default=0, description="Keep only the most recent N cleaned commits (0 = all).")
    diff_files: list[str] = Field(default=[], description="*.diffs.parquet files beyond commit_diffs: the diffs that "
                                                          "came with commit tables loaded by `kforge import-commits` "
                                                          "from outside the data directory.")


@dg.asset(group_name=GROUP, deps=["commit_diffs", "commits"],
          check_specs=[dg.AssetCheckSpec("split_by_time", asset="generation_corpus",
                                         description="Within each repository, every test row is later than "
                                                     "every training row (per-repository time split by commit date)."),
                       dg.AssetCheckSpec("test_set_large_enough", asset="generation_corpus",
                                         description="At least 20 held-out test rows.")],
          description="Cleaned generation corpus from every source (ingested clones, imported commit tables with "
                      "diffs, reviewer feedback; column origin), bots and near-duplicate messages dropped, each "
                      "repository split by time on its own.")
def generation_corpus(config: CorpusConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    corpus, rep = corpus_for(wh, LibCorpusConfig.from_flat(**config.model_dump()))
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
    device: str = Field(default="auto", description="Where the LM trains: auto (cuda when torch sees a GPU, else cpu; "
                                                    "logged and recorded as the train_device param), cpu or cuda.")
    budget: str = Field(default="auto", description="LM training budget when steps, budget_tokens and epochs are 0: "
                                                    "demo (86k tokens: the demo's former 40 CPU steps of batch 8, ~15 s), "
                                                    "nightly (12 epochs within 20 minutes of training: on CPU the 20 "
                                                    "minutes bind, on a GPU the epochs), or auto: demo for runs tagged "
                                                    "kforge/trigger=demo (make demo), nightly otherwise.")
    steps: int = Field(default=0, description="A fixed number of LM optimizer steps (0: the budget decides).")
    budget_tokens: int = Field(default=0, description="Train the LM on about this many tokens (0: the budget decides).")
    epochs: float = Field(default=0.0, description="Train the LM for this many passes over its examples (0: the budget decides).")
    batch_size: int = Field(default=0, description="Sequences per micro-batch; 0: 8 on CPU, 64 on CUDA.")
    grad_accum: int = Field(default=1, description="Micro-batches per optimizer step.")
    lr: float = Field(default=0.0, description="Peak learning rate of the LM; 0: 3e-3 x sqrt(batch x grad_accum / 8).")
    amp: bool = Field(default=True, description="Mixed precision on CUDA: bf16 where supported, else fp16 with loss "
                                                "scaling. CPU always trains in fp32.")
    d_model: int = Field(default=128, description="Width of the from-scratch transformer.")
    n_layers: int = Field(default=2, description="Layers of the from-scratch transformer.")
    n_heads: int = Field(default=4, description="Attention heads of the from-scratch transformer.")
    vocab_size: int = Field(default=2000, description="BPE vocabulary size.")
    max_len: int = Field(default=320, description="Tokens per training sequence.")
    eval_rows: int = Field(default=60, description="Held-out test rows decoded for the LM metrics and its champion's score.")
    adapter_families: int = Field(default=1, description="LoRA adapters for the N largest subsystem families.")
    adapter_steps: int = Field(default=10, description="Optimizer steps per LoRA adapter.")
    retrieval: str = Field(default="bow", description="How NNGen and the LM's neighbours find candidates: bow "
                           "(TF-IDF), embedding (all-MiniLM-L6-v2) or hybrid (both).")
    calib_rows: int = Field(default=40, description="Validation rows generated to calibrate the confidence.")
    max_minutes: float = Field(default=0.0, description="Wall-clock budget of LM training: the schedule is fitted to "
                                                        "it and training stops at it (0: none, or the budget's).")
    level1_estimators: int = Field(default=40, description="Boosting rounds per level-1 head.")


@dg.multi_asset(
    specs=[dg.AssetSpec("generation_level1", group_name=GROUP, deps=["generation_corpus"],
                        description="Gradient boosting: subsystem, change type, complexity (calibrated)."),
           dg.AssetSpec("generation_retrieval", group_name=GROUP, deps=["generation_corpus"],
                        description="NNGen nearest-neighbour index: baseline and level-2 context."),
           dg.AssetSpec("generation_lm", group_name=GROUP, deps=["generation_level1", "generation_retrieval"],
                        description="Level-2 causal LM (+ per-family LoRA adapters), released against NNGen and "
                                    "the champion on the same test commits.")],
    check_specs=[*release_checks(L1_SPEC), *release_checks(LM_SPEC)],
    can_subset=False,
)
def generation_models(context: dg.AssetExecutionContext, config: GenerationTrainConfig, warehouse: WarehouseResource,
                      mlflow: MlflowResource, text_encoder: TextEncoderResource):
    from kforge.generation.monitoring import set_diff_reference
    from kforge.text import use_encoder

    wh = warehouse.get()
    corpus = wh.read_table("generation_corpus")
    repos = {r: p for r, p in registered_repositories(wh).items() if p.exists()}
    cfg = GenerationConfig.from_flat(**config.model_dump(), trigger=context.run.tags.get(TRIGGER_TAG, ""))
    with use_encoder(text_encoder.encoder()):   # loads nothing unless retrieval is in an embedding mode
        out = train_and_release(mlflow.tracker(), corpus, cfg, repos=repos, dagster_run_id=context.run.run_id,
                                log=context.log.info)
    assert out.level1 is not None and out.lm is not None
    result = out.result
    set_diff_reference(wh, out.lm.version, corpus)
    m = result.metrics
    yield dg.MaterializeResult(asset_key="generation_level1", metadata={
        **release_metadata(out.level1), **metric_entries({k: v for k, v in m.items() if k.startswith("l1_")})})
    yield dg.MaterializeResult(asset_key="generation_retrieval", metadata={
        "mlflow_run_id": out.lm.run_id, "index_rows": len(result.bundle.index),
        **metric_entries({k: v for k, v in m.items() if "nngen" in k})})
    yield dg.MaterializeResult(asset_key="generation_lm", metadata={
        **release_metadata(out.lm),
        "adapters": dg.MetadataValue.json({f: {"model": r.spec.name, "version": r.version, "decision": r.decision,
                                               "reason": r.reason} for f, r in out.adapters.items()}),
        "adapter_gates": dg.MetadataValue.json({f: dict(g) for f, g in result.adapter_gates.items()}),
        **metric_entries({k: v for k, v in m.items() if k.startswith(("test_", "train_"))}),
        "samples": table_md(result.samples.select("reference", "lm", "nngen", "lm_noprefix", "nngen_noprefix",
                                                  "lm_junk", "confidence"), 10)})
    yield from release_check_results(out.level1)
    yield from release_check_results(out.lm)


defs = dg.Definitions(assets=[generation_corpus, generation_models])
