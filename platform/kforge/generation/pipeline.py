"""One generation training run: level 1, the NNGen index, the level-2 LM (+ LoRA adapters per
subsystem family), evaluated on the held-out test split together with the NNGen baseline."""

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from kforge.errors import InputError
from kforge.generation import evaluate, patch_task, prompts
from kforge.generation.backbones import Backbone, ScratchBackbone, SmolBackbone
from kforge.generation.bundle import Bundle
from kforge.generation.corpus import held_out_rows, split_frames
from kforge.generation.level1 import Level1Config, Level1Model, majority_baseline
from kforge.generation.lm import TinyLMConfig
from kforge.generation.retrieval import MODES, RetrievalIndex
from kforge.generation.train import TrainConfig, TrainResult, budget_preset, train


@dataclass
class GenerationConfig:
    backbone: str = "scratch"              # scratch | smollm2
    lm: TinyLMConfig = field(default_factory=TinyLMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    level1: Level1Config = field(default_factory=Level1Config)
    max_train_rows: int = 0                # 0 = all training rows become LM examples
    patch_task_share: float = 0.3          # share of patch-drafting examples mixed into training
    blank_subsystem_share: float = 0.15    # message examples trained with an empty <sub> slot (the LM on its own)
    eval_rows: int = 200                   # test rows generated for metrics (all if fewer)
    calib_rows: int = 100                  # validation rows used to calibrate the confidence
    adapter_families: int = 2              # LoRA adapters for the N largest families (0 = none)
    adapter_steps: int = 20
    min_test_rows: int = 20
    retrieval: str = "bow"                 # how NNGen and the LM's neighbours find candidates: bow | embedding | hybrid

    @classmethod
    def from_flat(cls, *, backbone: str = "scratch", device: str = "auto", budget: str = "auto", trigger: str = "",
                  steps: int = 0, budget_tokens: int = 0, epochs: float = 0.0, max_minutes: float = 0.0,
                  batch_size: int = 0, grad_accum: int = 1, lr: float = 0.0, amp: bool = True,
                  threads: int = 1, checkpoint_dir: str = "", resume: bool = True, d_model: int = 192,
                  n_layers: int = 3, n_heads: int = 4, vocab_size: int = 4096, max_len: int = 384,
                  level1_estimators: int = 80, eval_rows: int = 200, calib_rows: int = 100,
                  adapter_families: int = 2, adapter_steps: int = 20, retrieval: str = "bow") -> "GenerationConfig":
        """The one mapping from flat settings (a Dagster ``Config``, CLI options) to this config. The LM's
        budget is ``steps``, ``budget_tokens`` or ``epochs`` when one is given, else the named ``budget``
        (:func:`~kforge.generation.train.budget_preset`; ``trigger``: the run's ``kforge/trigger``)."""
        sized = budget_preset(budget, trigger, steps=steps, budget_tokens=budget_tokens, epochs=epochs,
                              max_minutes=max_minutes)
        return cls(backbone=backbone,
                   lm=TinyLMConfig(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                                   max_len=max_len),
                   train=TrainConfig(**sized, batch_size=batch_size, grad_accum=grad_accum, lr=lr, device=device,
                                     amp=amp, threads=threads, checkpoint_dir=checkpoint_dir, resume=resume),
                   level1=Level1Config(n_estimators=level1_estimators), eval_rows=eval_rows, calib_rows=calib_rows,
                   adapter_families=adapter_families, adapter_steps=adapter_steps, retrieval=retrieval)

    def validate(self) -> None:
        if self.backbone not in ("scratch", "smollm2"):
            raise InputError(f"backbone must be scratch or smollm2, got {self.backbone!r}")
        if self.eval_rows < 1:
            raise InputError("eval_rows must be >= 1")
        if self.retrieval not in MODES:
            raise InputError(f"retrieval must be one of {', '.join(MODES)}, got {self.retrieval!r}")
        lm = self.lm
        if self.backbone == "scratch" and (min(lm.vocab_size, lm.d_model, lm.n_layers, lm.n_heads, lm.max_len) < 1
                                           or lm.d_model % lm.n_heads):
            raise InputError(f"the LM needs vocab_size, d_model, n_layers, n_heads and max_len >= 1 and d_model a multiple "
                             f"of n_heads, got {lm.vocab_size}, {lm.d_model}, {lm.n_layers}, {lm.n_heads}, {lm.max_len}")
        if (min(self.calib_rows, self.adapter_families) < 0 or (self.adapter_families and self.adapter_steps < 1)
                or self.level1.n_estimators < 1):
            raise InputError(f"need calib_rows >= 0, adapter_families >= 0, adapter_steps >= 1 and level1 n_estimators "
                             f">= 1, got {self.calib_rows}, {self.adapter_families}, {self.adapter_steps}, "
                             f"{self.level1.n_estimators}")
        self.train.validate()


@dataclass
class GenerationResult:
    bundle: Bundle
    metrics: dict[str, float]
    params: dict[str, Any]
    history: TrainResult
    samples: pl.DataFrame
    adapters: dict[str, TrainResult]
    test_shas: list[str]                   # the decoded test rows behind the LM's and NNGen's metrics
    adapter_gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    level1_test_shas: list[str] = field(default_factory=list)   # the test rows behind the l1_* metrics
    adapter_test_shas: dict[str, list[str]] = field(default_factory=dict)  # per family: rows behind test_ppl_*
    bundle_dir: Path | None = None


def build_examples(backbone: Backbone, rows: pl.DataFrame, index: RetrievalIndex, *, self_in_index: bool,
                   patch_share: float = 0.0, blank_subsystem_share: float = 0.0,
                   seed: int = 7, patch_items: Sequence[patch_task.TaskItem] = ()) -> list[prompts.Example]:
    """Message examples (gold level-1 labels, two retrieved neighbours, never the row itself) and
    a share of patch-drafting examples: the focused task (pre-image window -> the real hunk,
    :mod:`~kforge.generation.patch_task`) for the rows of ``patch_items`` (those whose parent tree
    is available), the skeleton task (issue text -> message + diff skeleton) for the others.

    ``blank_subsystem_share`` of the message examples leave the ``<sub>`` slot empty and retrieve
    their neighbours without the subsystem, as evaluation's "no prefix" drafts do, so the LM also
    learns to write a subject on its own and ``lm_noprefix_*`` measures it in distribution."""
    import random

    rnd = random.Random(seed)
    blank = [blank_subsystem_share > 0 and rnd.random() < blank_subsystem_share for _ in range(rows.height)]
    excl = None
    if self_in_index:
        pos = {s: i for i, s in enumerate(index.rows["sha"].to_list())}
        excl = [pos.get(s, -1) for s in rows["sha"]]
        excl = [e if e >= 0 else None for e in excl]  # type: ignore[misc]
    hints = ["" if b else p for b, p in zip(blank, rows["prefix"].to_list(), strict=True)]
    nbs = index.query_diffs(rows["diff"].to_list(), hints, n=2, exclude_self=excl)
    focused = {(it.repo, it.sha): it for it in patch_items}
    out = []
    for r, nb, b in zip(rows.iter_rows(named=True), nbs, blank, strict=True):
        l1 = prompts.gold_l1(r)
        out.append(prompts.message_example(backbone, r, {**l1, "subsystem": ""} if b else l1,
                                           [n.subject for n in nb], backbone.max_len))
        item = focused.get((r["repo"], r["sha"]))
        if item is not None and patch_share and rnd.random() < patch_share:
            out.append(patch_task.example(backbone, item, backbone.max_len))
        elif item is None and patch_share and r["issue"] and len(r["issue"]) > 20 and rnd.random() < patch_share:
            out.append(prompts.patch_example(backbone, r, l1, (nb[-1].subject, nb[-1].diff) if nb else None, backbone.max_len))
    return out


def make_backbone(cfg: GenerationConfig, train_rows: pl.DataFrame) -> Backbone:
    if cfg.backbone == "smollm2":
        return SmolBackbone.load_base(cfg.train.device, max_len=cfg.lm.max_len)
    texts = [f"{s}\n\n{b}\n{prompts.diff_view(d, 1500)}" for s, b, d in
             zip(train_rows["subject"], train_rows["body"], train_rows["diff"], strict=True)]
    return ScratchBackbone.create(texts, cfg.lm, seed=cfg.train.seed)


def run_generation(corpus: pl.DataFrame, cfg: GenerationConfig, workdir: Path,
                   repo_paths: dict[str, Path] | None = None, log: Any = print) -> GenerationResult:
    cfg.validate()
    requested = cfg.train.device
    cfg = replace(cfg, train=cfg.train.resolved(log))  # auto device, batch and lr made concrete, and logged
    parts = split_frames(corpus)
    train_rows, val, test = parts["train"], parts["val"], parts["test"]
    if test.height < cfg.min_test_rows:
        raise InputError(f"only {test.height} held-out test rows (< {cfg.min_test_rows}): too few to measure anything")
    t0 = time.perf_counter()
    level1 = Level1Model(cfg.level1).fit(train_rows, val)
    m: dict[str, float] = {}
    m |= {f"l1_{k}": v for k, v in level1.evaluate(test, "diff").items()}
    m |= {f"l1_{k}": v for k, v in level1.evaluate(test, "issue").items()}
    m |= {f"l1_{k}": v for k, v in majority_baseline(train_rows, test).items()}
    m["time_level1_s"] = time.perf_counter() - t0
    log(f"level 1 trained in {m['time_level1_s']:.1f}s")

    index = RetrievalIndex(mode=cfg.retrieval).fit(train_rows)
    backbone = make_backbone(cfg, train_rows)
    lm_rows = train_rows.tail(cfg.max_train_rows) if cfg.max_train_rows else train_rows
    t1 = time.perf_counter()
    items = patch_task.task_items(lm_rows, repo_paths) if repo_paths and cfg.patch_task_share else []
    examples = build_examples(backbone, lm_rows, index, self_in_index=True, patch_share=cfg.patch_task_share,
                              blank_subsystem_share=cfg.blank_subsystem_share, seed=cfg.train.seed, patch_items=items)
    m["train_patch_task_rows"] = float(len(items))
    m["time_examples_s"] = time.perf_counter() - t1
    if cfg.backbone == "smollm2":
        from kforge.generation.adapters import with_lora

        backbone = with_lora(backbone)
    hist = train(backbone, examples, cfg.train)
    log(f"LM: {hist.steps_done} steps (budget {hist.planned_steps}"
        f"{f', fitted to {cfg.train.max_minutes:g} min: {hist.horizon_steps}' if hist.horizon_steps < hist.planned_steps else ''}), "
        f"{hist.tokens} tokens, loss {hist.first_loss():.3f} -> {hist.last_loss():.3f}, {hist.tokens_per_s:.0f} tok/s "
        f"on {cfg.train.device} ({hist.precision})")
    m |= {"train_loss_first": hist.first_loss(), "train_loss_last": hist.last_loss(), "train_tokens_per_s": hist.tokens_per_s,
          "train_seconds": hist.seconds, "train_peak_mem_mb": hist.peak_mem_mb, "train_steps": float(hist.steps_done),
          "train_examples": float(len(examples)), "train_planned_steps": float(hist.planned_steps),
          "train_horizon_steps": float(hist.horizon_steps), "train_tokens": float(hist.tokens)}

    calib_rows = val.tail(cfg.calib_rows)
    calib = None
    if calib_rows.height >= 5:
        d = evaluate.draft_messages(backbone, level1, index, calib_rows["diff"].to_list())
        ok = [evaluate.acceptable(h, r) for h, r in zip(d.subjects, calib_rows["subject"], strict=True)]
        calib = evaluate.fit_confidence(d.mean_logprob, ok)
    eval_rows = held_out_rows(test, cfg.eval_rows)   # shared evenly among repositories
    test_examples = build_examples(backbone, eval_rows, index, self_in_index=False)
    t2 = time.perf_counter()
    res, samples = evaluate.evaluate_messages(backbone, level1, index, eval_rows, test_examples, calib)
    m |= {f"test_{k}": v for k, v in res.items()}
    m["time_eval_s"] = time.perf_counter() - t2
    m |= {f"test_{k}": v for k, v in evaluate.evaluate_patches(backbone, level1, index, eval_rows.head(16), repo_paths or {}).items()}
    m |= {f"test_{k}": v for k, v in patch_task.evaluate(backbone, test, repo_paths or {}).items()}

    adapters: dict[str, TrainResult] = {}
    gates: dict[str, dict[str, Any]] = {}
    adapter_shas: dict[str, list[str]] = {}
    adir = workdir / "bundle" / "adapters"
    if cfg.adapter_families:
        from kforge.generation.adapters import compare_adapter, peft_available, save_adapter, train_adapter

        if peft_available():
            fams = [f for f, n in Counter(train_rows["family"].to_list()).most_common(cfg.adapter_families) if n >= 5]
            for fam in fams:
                fam_rows = lm_rows.filter(pl.col("family") == fam)
                ex = build_examples(backbone, fam_rows, index, self_in_index=True)
                acfg = TrainConfig(**{**cfg.train.__dict__, "steps": cfg.adapter_steps, "checkpoint_dir": "", "warmup": 2})
                base = backbone
                if hasattr(base.model, "merge_and_unload"):
                    from kforge.generation.adapters import merge

                    base = merge(backbone)
                tuned, ah = train_adapter(base, ex, acfg)
                held = {name: build_examples(base, part.filter(pl.col("family") == fam), index, self_in_index=False)
                        for name, part in (("val", val), ("test", test))}
                g = compare_adapter(base, tuned, held["val"], held["test"])
                gates[fam] = g
                adapter_shas[fam] = test.filter(pl.col("family") == fam)["sha"].to_list()
                m |= {f"adapter_{fam}_{k}": float(v) for k, v in g.items() if k != "reason"}
                log(f"adapter {fam}: loss {ah.first_loss():.3f} -> {ah.last_loss():.3f}; "
                    f"{'kept' if g['kept'] else 'dropped'} ({g['reason']})")
                adapters[fam] = ah
                if g["kept"]:
                    save_adapter(tuned, adir / fam, {"family": fam, "examples": len(ex), "train_loss_first": ah.first_loss(),
                                                      "train_loss_last": ah.last_loss(), "gate": g})
        else:
            log("peft not installed: no LoRA adapters trained")
    if hasattr(backbone.model, "merge_and_unload"):  # SmolLM2: the run's LoRA is folded for the bundle
        from kforge.generation.adapters import merge

        backbone = merge(backbone)
    params = {"backbone": cfg.backbone, "retrieval": cfg.retrieval, **{f"lm_{k}": v for k, v in cfg.lm.as_dict().items()},
              **{f"train_{k}": v for k, v in cfg.train.__dict__.items()},
              "train_device_requested": requested, "train_precision": hist.precision,
              **{f"level1_{k}": v for k, v in cfg.level1.__dict__.items()},
              "eval_rows": eval_rows.height, "train_rows": train_rows.height, "val_rows": val.height, "test_rows": test.height,
              "n_params": sum(p.numel() for p in backbone.model.parameters())}
    kept = sorted(f for f, g in gates.items() if g["kept"])
    bundle = Bundle(level1, index, backbone, calib, {"params": params, "families_with_adapters": kept,
                                                     "adapter_gates": gates}, adir if kept else None)
    bundle_dir = bundle.save(workdir / "bundle")
    return GenerationResult(bundle, m, params, hist, samples, adapters, eval_rows["sha"].to_list(), gates,
                            test["sha"].to_list(), adapter_shas, bundle_dir)
