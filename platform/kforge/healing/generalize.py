"""Leave one source out: does the healing classifier hold on a source of errors it has never seen?

A *source* is where a row comes from, as the data says it: the notebook platform of a JunoBench crash
(``nb_source``: kaggle, github) and the operating system of a syzkaller log (``os``: linux, freebsd,
gvisor, ...). For each source in turn, the classifier (the same members and rules as the released
bundle, primary label only) and TF-IDF + logistic regression are trained on the rows of the *other*
sources and score that source's rows on the primary label (kernel ``crash_class``, Python
``label_root_cause``). Rows without a source (feedback, the embedded corpus) are never held out and
never trained on here: their source is unknown, so they could be the held-out one.

The (model, baseline) pairs feed the release path's ``generalizes`` gate
(:func:`kforge.registry.gates.generalizes_check`): the model must beat TF-IDF + LR on every judged
source. A source is judged only when it has ``min_rows`` labelled rows and the other sources have
``min_rows`` labelled rows of two or more classes; the others are listed with why not. With fewer
than two judged sources (the embedded corpus: none; the shared syzkaller file: Linux plus one gVisor
log) the gate does not run, and does not block.

Example::

    gen = leave_one_source_out(tasks, CLASSIFIER, members=("linear", "gbm"))
    gen.check.passed, gen.table, gen.metrics()
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

import polars as pl
from kforge.healing.rules import RuleEngine
from kforge.healing.specs import MIN_SOURCE_ROWS, PRIMARY
from kforge.registry.gates import GENERALIZES, Check, ModelSpec, generalizes_check, not_run

SOURCE_FIELDS = {"kernel": "os", "python": "nb_source"}
BASELINE = "tfidf_lr"
METRIC = "accuracy"
JUDGED = "judged"
Tasks = dict[str, tuple[list[dict[str, Any]], tuple[str, ...], str]]
SCHEMA = {"kind": pl.String, "source": pl.String, "label": pl.String, "n_train": pl.Int64, "n_test": pl.Int64,
          "model_accuracy": pl.Float64, "tfidf_lr_accuracy": pl.Float64, "delta": pl.Float64, "status": pl.String}


def source_of(kind: str, row: dict[str, Any]) -> str:
    """The row's source (``""`` when the row does not say)."""
    field = SOURCE_FIELDS.get(kind, "")
    value = row.get(field) if field else None
    return str(value).strip().lower() if value not in (None, "") else ""


def group_name(kind: str, source: str) -> str:
    return f"{kind}:{source}"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name)


@dataclass(frozen=True)
class Generalization:
    """Per-source results (``table``: kind, source, label, n_train, n_test, model and TF-IDF+LR accuracy,
    delta, status) and the ``generalizes`` check built from the judged sources."""

    table: pl.DataFrame
    check: Check

    def judged(self) -> pl.DataFrame:
        return self.table.filter(pl.col("status") == JUDGED)

    def per_group(self) -> dict[str, tuple[float, float]]:
        return {group_name(r["kind"], r["source"]): (r["model_accuracy"], r["tfidf_lr_accuracy"])
                for r in self.judged().iter_rows(named=True)}

    def worst(self) -> str:
        """The judged source with the lowest model - baseline delta (``""`` without one)."""
        j = self.judged()
        if not j.height:
            return ""
        r = j.sort("delta").row(0, named=True)
        return group_name(r["kind"], r["source"])

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: ``generalizes_accuracy_<kind>_<source>`` (model), ``generalizes_tfidf_lr_accuracy_...``,
        the means over judged sources and the worst delta."""
        out: dict[str, float] = {}
        j = self.judged()
        for r in j.iter_rows(named=True):
            key = _safe(f"{r['kind']}_{r['source']}")
            out[f"generalizes_{METRIC}_{key}"] = r["model_accuracy"]
            out[f"generalizes_{BASELINE}_{METRIC}_{key}"] = r["tfidf_lr_accuracy"]
        if j.height:
            out[f"generalizes_{METRIC}_mean"] = float(j["model_accuracy"].mean())  # type: ignore[arg-type]
            out[f"generalizes_{BASELINE}_{METRIC}_mean"] = float(j["tfidf_lr_accuracy"].mean())  # type: ignore[arg-type]
            out[f"generalizes_{METRIC}_worst_delta"] = float(j["delta"].min())  # type: ignore[arg-type]
        return out

    def summary(self) -> dict[str, Any]:
        """Plain values for the asset metadata (the table itself goes in as a Markdown table)."""
        c = self.check
        out: dict[str, Any] = {"generalizes": "not run" if c.passed is None else ("passed" if c.passed else "failed"),
                               "generalizes_detail": c.detail, "generalizes_worst_source": self.worst()}
        out.update({k: round(v, 4) for k, v in self.metrics().items() if k.endswith(("_mean", "_worst_delta"))})
        return out


def _row(kind: str, source: str, label: str, n_train: int, n_test: int, model: float, base: float,
         status: str) -> dict[str, Any]:
    delta = model - base if model == model and base == base else float("nan")
    return {"kind": kind, "source": source, "label": label, "n_train": n_train, "n_test": n_test,
            "model_accuracy": model, "tfidf_lr_accuracy": base, "delta": delta, "status": status}


def leave_one_source_out(tasks: Tasks, spec: ModelSpec, *, members: tuple[str, ...] = ("linear", "gbm"),
                         seed: int = 0, rules: RuleEngine | None = None,
                         min_rows: int = MIN_SOURCE_ROWS, text_encoder: bool = False) -> Generalization:
    """Train without each source in turn and score that source's rows (``tasks``: kind -> (rows, labels,
    group column), as the classifier is trained on). Only judged sources cost a training."""
    from kforge.healing.model import train_bundle
    from kforge.healing.scoring import baseline_accuracy, labelled, primary_accuracy

    rules = rules or RuleEngine.default()
    recs: list[dict[str, Any]] = []
    for kind, (rows, _, group) in tasks.items():
        label = PRIMARY.get(kind, "")
        rows = labelled(rows, label) if label else []
        by_source = Counter(source_of(kind, r) for r in rows)
        by_source.pop("", None)
        for source in sorted(by_source):
            test = [r for r in rows if source_of(kind, r) == source]
            train = [r for r in rows if source_of(kind, r) not in ("", source)]
            if len(test) < min_rows:
                status = f"too few held-out rows (< {min_rows})"
            elif len(train) < min_rows or len({str(r[label]) for r in train}) < 2:
                status = f"too few training rows from other sources (< {min_rows} or one class)"
            else:
                model = train_bundle({kind: (train, (label,), group)}, rules, kinds=members, seed=seed,
                                     text_encoder=text_encoder)
                recs.append(_row(kind, source, label, len(train), len(test),
                                 primary_accuracy(model, kind, test, label), baseline_accuracy(train, test, label), JUDGED))
                continue
            recs.append(_row(kind, source, label, len(train), len(test), float("nan"), float("nan"), status))
    table = pl.DataFrame(recs, schema=SCHEMA)
    gen = Generalization(table, Check(GENERALIZES, None))
    per_group = gen.per_group()
    if len(per_group) < 2:
        listed = "; ".join(f"{r['kind']}:{r['source']} {r['n_test']} rows ({r['status']})"
                           for r in table.iter_rows(named=True)) or "no row names its source"
        check = not_run(GENERALIZES, f"{len(per_group)} judged source(s) < 2: nothing to leave out ({listed})")
    else:
        check = generalizes_check(spec, per_group)
    return Generalization(table, check)
