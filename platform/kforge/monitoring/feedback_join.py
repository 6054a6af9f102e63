"""Accuracy on feedback and "was it followed?", from the feedback tables joined to logged items.

Each family's feedback rows (``feedback_<family>``) are matched to the latest prediction each
model version made for the same key *before* the feedback arrived (a prediction logged after the
truth was known does not count). Per family:

===========  ==========================================  =====================================  ==========================================
family       key / field                                 correct when                           followed when
===========  ==========================================  =====================================  ==========================================
acceptance   ``target:item_id`` (sha prefix ok) /        (p >= threshold) == outcome            n/a (a risk score is not a recommendation)
             ``outcome``
healing      ``error_id`` / label name (label rows);     predicted label == labelled value      a fix row's ``error_class`` is the rule /
             ``error_id`` / ``error_class`` (fix rows)                                          class kforge assigned to that error
generation   subject of ``generated_message`` /          verdict == accept                      verdict is accept or edit (message used)
             ``message`` (+ ``model_version`` if given)
mixins       ``mixins|node_type`` / ``outcome``          predicted success/failure == outcome   the combination kforge called compatible
                                                                                                is the one deployed (every feedback row is
                                                                                                a deployment)
telemetry    rows carry ``predicted`` and ``model_version``  forecaster: predicted == actual        the row's ``followed`` flag
===========  ==========================================  =====================================  ==========================================

:func:`feedback_outcomes` and :func:`feedback_followed` return frames shaped like the
``prediction_outcomes`` / ``prediction_followed`` tables (one row per feedback row and model
version), so the report treats them like outcomes logged directly.
"""

from collections.abc import Callable

import polars as pl

from kforge.monitoring.items import message_key, read_items
from kforge.storage import Warehouse

#: family -> function(feedback) -> frame with feedback_id, received_at, item_key, field, truth,
#: and optional model_version_fb (restrict to that version)
KeyFn = Callable[[pl.DataFrame], pl.DataFrame]


def _acceptance(fb: pl.DataFrame) -> pl.DataFrame:
    return fb.select(
        "feedback_id", "received_at",
        (pl.col("target") + ":" + pl.col("item_id").str.to_lowercase()).alias("item_key"),
        pl.lit("outcome").alias("field"),
        pl.when(pl.col("outcome")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("truth"),
        pl.lit("correct").alias("kind"))


def _healing(fb: pl.DataFrame) -> pl.DataFrame:
    fb = fb.filter(pl.col("error_id").is_not_null() & (pl.col("error_id") != ""))
    labels = fb.filter(pl.col("kind") == "label").select(
        "feedback_id", "received_at", pl.col("error_id").alias("item_key"), pl.col("label").alias("field"),
        pl.col("value").alias("truth"), pl.lit("correct").alias("kind"))
    fixes = fb.filter(pl.col("kind") == "fix").select(
        "feedback_id", "received_at", pl.col("error_id").alias("item_key"), pl.lit("error_class").alias("field"),
        pl.col("error_class").alias("truth"), pl.lit("followed").alias("kind"))
    return pl.concat([labels, fixes])


def _generation(fb: pl.DataFrame) -> pl.DataFrame:
    return fb.select(
        "feedback_id", "received_at",
        pl.col("generated_message").map_elements(message_key, return_dtype=pl.String).alias("item_key"),
        pl.lit("message").alias("field"), pl.col("verdict").alias("truth"), pl.lit("verdict").alias("kind"),
        pl.col("model_version").cast(pl.String).alias("model_version_fb"))


def _mixins(fb: pl.DataFrame) -> pl.DataFrame:
    return fb.select(
        "feedback_id", "received_at", (pl.col("mixins") + "|" + pl.col("node_type")).alias("item_key"),
        pl.lit("outcome").alias("field"), pl.col("outcome").alias("truth"), pl.lit("deployed").alias("kind"))


KEYS: dict[str, KeyFn] = {"acceptance": _acceptance, "healing": _healing, "generation": _generation,
                          "mixins": _mixins}


def _match(items: pl.DataFrame, keys: pl.DataFrame, prefix: bool) -> pl.DataFrame:
    """Latest prediction per (feedback row, model version) logged no later than the feedback."""
    if prefix:  # acceptance: a feedback sha may be a prefix of the logged full sha
        n = 14  # "commit:" + 7 hex; e-mail ids are matched in full
        items = items.with_columns(pl.col("item_key").str.slice(0, n).alias("_k"))
        keys = keys.with_columns(pl.col("item_key").str.slice(0, n).alias("_k")).rename({"item_key": "fb_key"})
        j = items.join(keys, on=["_k", "field"]).filter(pl.col("item_key").str.starts_with(pl.col("fb_key")))
    else:
        j = items.join(keys, on=["item_key", "field"])
    j = j.filter(pl.col("logged_at") <= pl.col("received_at"))
    if "model_version_fb" in j.columns:
        j = j.filter(pl.col("model_version_fb").is_null() | (pl.col("model_version_fb") == pl.col("model_version")))
    return (j.sort("logged_at", "item_log_id")
             .group_by("feedback_id", "field", "model_name", "model_version", maintain_order=True).last())


def joined(wh: Warehouse) -> pl.DataFrame:
    """One row per (feedback row, field, model version): family, model, version, received_at,
    ``correct`` (bool or null) and ``followed`` (bool or null)."""
    frames = []
    for family, key_fn in KEYS.items():
        table = f"feedback_{family}"
        if not wh.has_table(table):
            continue
        items = read_items(wh, family)
        fb = wh.read_table(table)
        if items.height == 0 or fb.height == 0:
            continue
        m = _match(items, key_fn(fb), prefix=family == "acceptance")
        if m.height == 0:
            continue
        pred, truth, kind = pl.col("prediction"), pl.col("truth"), pl.col("kind")
        correct = (pl.when(kind.is_in(["correct", "deployed"])).then(pred == truth)
                   .when(kind == "verdict").then(truth == "accept").otherwise(None))
        followed = (pl.when(kind == "followed").then(pred == truth)
                    .when(kind == "verdict").then(truth.is_in(["accept", "edit"]))
                    .when(kind == "deployed").then(pred == "success").otherwise(None))
        frames.append(m.select(pl.lit(family).alias("family"), "model_name", "model_version", "feedback_id",
                               "received_at", correct.alias("correct"), followed.alias("followed")))
    tel = telemetry_joined(wh)
    if tel.height:
        frames.append(tel)
    schema = {"family": pl.String, "model_name": pl.String, "model_version": pl.String, "feedback_id": pl.Int64,
              "received_at": pl.Datetime("us", "UTC"), "correct": pl.Boolean, "followed": pl.Boolean}
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame(schema=schema)


#: telemetry feedback names the model by role; the registry names of those roles
TELEMETRY_MODELS = {"oom_forecaster": "kforge-telemetry-oom", "oom_recommender": "kforge-telemetry-recommender",
                    "scheduler_policy": "kforge-telemetry-scheduler"}


def telemetry_joined(wh: Warehouse) -> pl.DataFrame:
    """Telemetry feedback rows carry the prediction themselves (``predicted``, ``actual``,
    ``followed``, ``model_version``): forecaster rows are right when predicted == actual; every
    row with ``followed`` set says whether the recommendation was acted on. Rows without a
    ``model_version`` are attributed to version ``unknown``."""
    if not wh.has_table("feedback_telemetry"):
        return pl.DataFrame()
    fb = wh.read_table("feedback_telemetry")
    if fb.height == 0:
        return pl.DataFrame()
    return fb.select(
        pl.lit("telemetry").alias("family"),
        pl.col("model").replace_strict(TELEMETRY_MODELS, default=pl.col("model")).alias("model_name"),
        pl.col("model_version").cast(pl.String).fill_null("unknown").alias("model_version"),
        "feedback_id", "received_at",
        pl.when(pl.col("model") == "oom_forecaster").then(pl.col("predicted") == pl.col("actual"))
          .otherwise(None).alias("correct"),
        pl.col("followed").cast(pl.Boolean).alias("followed"))


def feedback_outcomes(wh: Warehouse, j: pl.DataFrame | None = None) -> pl.DataFrame:
    """Rows shaped like ``prediction_outcomes`` (n=1 per judged feedback row)."""
    j = joined(wh) if j is None else j
    j = j.filter(pl.col("correct").is_not_null())
    return j.select(pl.col("feedback_id").alias("outcome_id"), pl.col("received_at").alias("observed_at"),
                    "family", "model_name", "model_version", pl.lit(1, pl.Int64).alias("n"),
                    pl.col("correct").cast(pl.Int64).alias("n_correct"), pl.lit("feedback").alias("batch_ref"))


def feedback_followed(wh: Warehouse, j: pl.DataFrame | None = None) -> pl.DataFrame:
    """Rows shaped like ``prediction_followed`` (n_total=1 per feedback row that says)."""
    j = joined(wh) if j is None else j
    j = j.filter(pl.col("followed").is_not_null())
    return j.select(pl.col("feedback_id").alias("followed_id"), pl.col("received_at").alias("logged_at"),
                    "family", "model_name", "model_version", pl.col("followed").cast(pl.Int64).alias("n_followed"),
                    pl.lit(1, pl.Int64).alias("n_total"), pl.lit("feedback").alias("batch_ref"))
