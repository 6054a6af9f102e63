"""The one training entry of the healing family: the ``healing_model`` / ``healing_strategies``
assets and ``kforge healing train`` all call :func:`train_and_release` with a :class:`HealingConfig`.

It reads the *stored* tables (``healing_corpus_errors``, ``healing_fix_outcomes``, written by
:func:`store_corpus`) plus feedback, holds out whole groups by a hash of their key, trains and puts
each model through :func:`kforge.registry.release.release`:

* ``kforge-healing`` (classifier, see :mod:`kforge.healing.specs`), baseline ``tfidf_lr``, and its
  ``generalizes`` gate: trained without one source at a time (:mod:`kforge.healing.generalize`);
* ``kforge-healing-bandit`` and ``kforge-healing-effectiveness`` (see :mod:`kforge.healing.strategies`).

Example::

    res = train_and_release(tracker, warehouse, HealingConfig(models=("classifier",)))
    res.classifier.decision   # "promoted" | "blocked" | "unchanged"
"""

import json
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from kforge.config import check_seeds
from kforge.errors import InputError
from kforge.feedback import feedback_since
from kforge.healing.config import MODELS, HealingConfig, HealingRelease
from kforge.healing.evaluate import read_rows
from kforge.healing.generalize import Generalization, leave_one_source_out
from kforge.healing.model import HealingModel, train_bundle
from kforge.healing.pyfunc import BUNDLE_FILE, load_bundle_dir, save_pyfunc
from kforge.healing.rules import RuleEngine
from kforge.healing.scoring import baseline_accuracy, labelled, primary_accuracy, row_key, score_model
from kforge.healing.specs import CLASSIFIER, PRIMARY
from kforge.healing.strategies import release_strategies
from kforge.healing.training import build_tasks, corpus_tables, feedback_outcomes
from kforge.registry.gates import SPLIT_HOLDS, Check, size_check
from kforge.registry.heldout import stable_group_split
from kforge.registry.release import Candidate, Scored, release
from kforge.registry.tracking import Tracker
from kforge.storage import Warehouse

ERRORS_TABLE = "healing_corpus_errors"
OUTCOMES_TABLE = "healing_fix_outcomes"
Tasks = dict[str, tuple[list[dict[str, Any]], tuple[str, ...], str]]


@dataclass
class HealingInputs:
    corpus: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]


def store_corpus(wh: Warehouse) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Run the shipped faulty programs and store (error rows, fix outcomes): the ``healing_corpus`` asset."""
    rows, outcomes = corpus_tables()
    errors = pl.DataFrame(rows).drop("group", strict=False)
    wh.replace(ERRORS_TABLE, errors)
    wh.replace(OUTCOMES_TABLE, pl.DataFrame(outcomes))
    return errors, outcomes


def load_inputs(wh: Warehouse) -> HealingInputs:
    """The stored corpus tables plus healing feedback (labels join the tasks, fix rows the outcomes)."""
    if not wh.has_table(ERRORS_TABLE) or not wh.has_table(OUTCOMES_TABLE):
        raise InputError("no healing corpus tables yet: materialize healing_corpus first")
    corpus = wh.read_table(ERRORS_TABLE).to_dicts()
    programs = {str(r["id"]): str(r["program"]) for r in corpus}
    outcomes = wh.read_table(OUTCOMES_TABLE).to_dicts() + feedback_outcomes(feedback_since("healing", wh), programs)
    return HealingInputs(corpus, outcomes)


def split_tasks(tasks: Tasks, share: float, salt: str,
                not_held_out: set[str] | None = None) -> tuple[Tasks, Tasks, Check]:
    """(train tasks, test tasks, ``split_holds``): whole groups by a hash of the group key. A group holding a
    row that a hand-written rule was written after reading (``not_held_out``, default
    :func:`kforge.healing.evaluate.read_rows`) always trains: such a row is not held out for the rules."""
    not_held_out = read_rows() if not_held_out is None else not_held_out
    train, test = {}, {}
    overlap = n_train = n_test = pinned = 0
    for kind, (rows, labels, group) in tasks.items():
        keys = [str(r.get(group, r.get("id", ""))) for r in rows]
        tr, te = stable_group_split(keys, share, salt)
        read = {keys[i] for i in te if str(rows[i].get("id", "")) in not_held_out}
        if read:
            pinned += len(read)
            tr, te = sorted(tr + [i for i in te if keys[i] in read]), [i for i in te if keys[i] not in read]
        train[kind] = ([rows[i] for i in tr], labels, group)
        test[kind] = ([rows[i] for i in te], labels, group)
        tr_groups, te_groups = {keys[i] for i in tr}, {keys[i] for i in te}
        overlap += len(tr_groups & te_groups)
        n_train, n_test = n_train + len(tr_groups), n_test + len(te_groups)
    check = Check(SPLIT_HOLDS, overlap == 0 and n_test > 0 and n_train > 0,
                  f"{n_test} held-out groups, {n_train} training groups, {overlap} in both; {pinned} groups kept in "
                  "training because a rule was written after reading one of their rows",
                  {"test_groups": float(n_test), "train_groups": float(n_train), "overlapping_groups": float(overlap),
                   "groups_not_held_out": float(pinned)})
    return train, test, check


def tasks_table(tasks: Tasks) -> pl.DataFrame:
    """The labelled rows as a table (kind, key, row JSON): what ``data_version`` hashes."""
    recs = [(kind, row_key(kind, r, group), json.dumps(r, sort_keys=True, default=str))
            for kind, (rows, _, group) in tasks.items() for r in rows]
    return pl.DataFrame(recs, schema={"kind": pl.String, "key": pl.String, "row": pl.String}, orient="row")


def classifier_candidate(tasks: Tasks, config: HealingConfig) -> tuple[Candidate, HealingModel, dict[str, float],
                                                                    Generalization]:
    """Train the bundle on the training groups and score it (and ``tfidf_lr``) on the held-out rows;
    leave one source out for the ``generalizes`` gate (no training where no row names a source)."""
    train, test, split_check = split_tasks(tasks, config.test_share, config.salt)
    rules = RuleEngine.default()
    model = train_bundle(train, rules, kinds=config.members, seed=config.seed, text_encoder=config.text_encoder)
    metrics = score_model(model, {k: (rows, labels) for k, (rows, labels, _) in test.items()})
    kind = "kernel" if "kernel" in tasks else "python"
    label, group = PRIMARY[kind], tasks[kind][2]
    eval_rows = labelled(test[kind][0], label)
    keys = [row_key(kind, r, group) for r in eval_rows]
    score = primary_accuracy(model, kind, eval_rows, label)
    base = baseline_accuracy(train[kind][0], eval_rows, label)
    metrics.update(model.abstention_metrics())
    gen = leave_one_source_out(tasks, CLASSIFIER, members=config.members, seed=config.seed, rules=rules,
                               text_encoder=config.text_encoder)
    metrics.update(gen.metrics())
    metrics.update({"test_primary_accuracy": score, "baseline_tfidf_lr_accuracy": base, "n_test": float(len(keys)),
                    **{f"threshold_{k}_{lab}": lm.ensemble.threshold for k, d in model.models.items()
                       for lab, lm in d.items()}})

    def save(out: Path) -> None:
        with tempfile.TemporaryDirectory() as d:
            save_pyfunc(model, model.save(Path(d) / BUNDLE_FILE), out)

    def score_registered(model_dir: Path) -> Scored:
        return Scored(primary_accuracy(load_bundle_dir(model_dir), kind, eval_rows, label), keys)

    modes = {f"{k}.{lab}": lm.mode for k, d in model.models.items() for lab, lm in d.items()}
    cand = Candidate(
        CLASSIFIER, train_table=tasks_table(tasks), eval_keys=keys, score=score, baselines={"tfidf_lr": base},
        checks=[split_check, size_check(len(keys), CLASSIFIER.min_test_rows), gen.check],
        params={"kinds": ",".join(tasks), "primary": f"{kind}.{label}", "members": ",".join(config.members), "text_encoder": config.text_encoder,
                "test_share": config.test_share, "salt": config.salt, "seed": config.seed},
        metrics=metrics,
        texts={"hybrid_modes.json": json.dumps(modes, indent=1, sort_keys=True),
               "evaluation/generalizes_source.csv": gen.table.write_csv()},
        save_model=save, score_registered=score_registered)
    return cand, model, metrics, gen


def check_config(config: HealingConfig) -> None:
    """One clear :class:`InputError` for a config no model can be trained and measured with (the CLI's
    and the assets' options), before anything is read, trained or registered."""
    unknown = set(config.models) - set(MODELS)
    if unknown:
        raise InputError(f"unknown healing model(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}")
    if not config.models:
        raise InputError(f"no healing model to train; choose from {', '.join(MODELS)}")
    if not 0.0 < config.test_share < 1.0:   # 0: nothing held out, nothing measured; 1: nothing to train on
        raise InputError(f"test share must be between 0 and 1 (both excluded), got {config.test_share}")
    if config.replay_steps < 1:
        raise InputError(f"replay steps must be at least 1, got {config.replay_steps}")
    check_seeds(seed=(config.seed,))
    if not config.prior_weight >= 0.0 or config.prior_weight == float("inf"):
        raise InputError(f"prior weight must be a finite number >= 0, got {config.prior_weight}")


def train_and_release(tracker: Tracker, wh: Warehouse, config: HealingConfig, *,
                      dagster_run_id: str = "", encoder: Any = None) -> HealingRelease:
    """Train the configured healing models on the stored tables and release each one. ``encoder`` (a
    :class:`kforge.text.TextEncoder`, the ``text_encoder`` resource's) embeds for the encoder members when
    ``config.text_encoder`` is on (default: the home's model, cache in memory only)."""
    from kforge.monitoring.calls import set_training_reference
    from kforge.monitoring.descriptors import error_descriptors
    from kforge.text import use_encoder

    check_config(config)
    inputs = load_inputs(wh)
    out = HealingRelease()
    if "classifier" in config.models:
        tasks = build_tasks(config.data_dir, inputs.corpus, feedback_since("healing", wh))
        with use_encoder(encoder) if encoder is not None else nullcontext():
            cand, _, metrics, out.generalization = classifier_candidate(tasks, config)
        out.classifier = release(tracker, cand, dagster_run_id=dagster_run_id)
        out.metrics["classifier"] = metrics
        set_training_reference(wh, "healing", CLASSIFIER.name, out.classifier.version,
                               error_descriptors([r for t in tasks.values() for r in t[0]]))
    if {"bandit", "effectiveness"} & set(config.models):
        release_strategies(tracker, wh, inputs.outcomes, config, out, dagster_run_id=dagster_run_id)
    return out
