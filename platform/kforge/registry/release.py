"""The one release path: every model of every family reaches ``champion`` through :func:`release`.

Given a :class:`Candidate` (a trained model, its held-out score, the keys of the rows behind it,
its named baselines' scores on those rows and its evaluation gates), :func:`release`:

1. computes ``data_version`` (hash of the training table), ``eval_rows_digest`` (hash of the
   sorted held-out keys), ``code_version`` (git sha) and a hash of the params;
2. registers nothing when the latest version has the same data, code and params (``unchanged``);
   if that version's gate said "promoted" but its run stopped before the alias moved, promotes it;
3. logs one run to ``kforge/<family>`` (params, numeric metrics, plots, texts, the model dir);
4. registers the version as ``challenger`` with the digests as tags;
5. loads the ``champion`` from the registry and scores it with the family's own scorer, which
   must report the keys it scored: a champion scored on other rows, or not scorable at all,
   blocks promotion with the reason recorded (nothing is swallowed);
6. promotes only when every blocking gate passed and the challenger beats the champion, keeping
   ``previous-champion``; the decision goes to version tags and a readable description;
7. returns one :class:`ReleaseResult` that the asset turns into metadata and check results.

Example (a toy model; see ``tests/unit/registry/test_release.py``)::

    spec = ModelSpec(name="kforge-toy", family="unit", asset_key="toy", metric="test_acc",
                     baselines=("majority",), min_test_rows=2, point_in_time=False)
    cand = Candidate(spec, train_table=train, eval_keys=keys, score=0.8, baselines={"majority": 0.5},
                     checks=[Check("split_holds", True), size_check(len(keys), 2)],
                     save_model=save, score_registered=score)
    result = release(tracker, cand, dagster_run_id=context.run.run_id)
"""

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from kforge.registry import aliases
from kforge.registry.gates import (
    BEATS_CHAMPION,
    SAVED_MODEL_REPRODUCES,
    Check,
    ModelSpec,
    beats,
    beats_check,
    not_run,
)
from kforge.registry.heldout import rows_digest
from kforge.registry.tracking import Tracker, code_version, data_version
from kforge.storage.lock import file_lock

Decision = Literal["promoted", "blocked", "unchanged"]
TAG = "kforge."
DAGSTER_UI = "http://127.0.0.1:3000"  # `make dev`; override with $KFORGE_DAGSTER_URL
MLFLOW_UI = "http://127.0.0.1:5000"  # `make mlflow`; override with $KFORGE_MLFLOW_URL


ML_WORKFLOW = "workflowType=machine_learning"  # the MLflow UI's "Model training" view (default: GenAI)


def experiment_url(experiment_id: str, mlflow_ui: str | None = None) -> str:
    """The experiment's runs table in the MLflow UI's "Model training" workflow."""
    base = (mlflow_ui or ui_urls()[1]).rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs?{ML_WORKFLOW}"


def ui_urls() -> tuple[str, str]:
    """(Dagster UI, MLflow UI) base URLs that metadata and descriptions link to."""
    return (os.environ.get("KFORGE_DAGSTER_URL", DAGSTER_UI).rstrip("/"),
            os.environ.get("KFORGE_MLFLOW_URL", MLFLOW_UI).rstrip("/"))


@dataclass(frozen=True)
class Scored:
    """A score and the keys of the rows it was measured on."""

    score: float
    keys: Sequence[str]


@dataclass
class Candidate:
    """One trained model, ready for the release path.

    ``save_model(dir)`` writes an MLflow model directory (a pyfunc or flavour with signature and
    input example); it is logged at ``model`` in the run and registered from there.
    ``score_registered(dir)`` loads such a directory (the champion's, downloaded from the
    registry) and scores it on *the same* held-out rows, returning their keys too.
    """

    spec: ModelSpec
    train_table: pl.DataFrame | str
    eval_keys: Sequence[str]
    score: float
    save_model: Callable[[Path], None]
    score_registered: Callable[[Path], Scored]
    baselines: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    log_extra: Callable[[], None] | None = None
    asset_key: str = ""


@dataclass(frozen=True)
class ReleaseResult:
    """What happened to one candidate; the asset turns it into metadata and check results."""

    spec: ModelSpec
    decision: Decision
    reason: str
    version: int
    run_id: str
    challenger_score: float
    champion_version: int | None
    champion_score: float | None
    baselines: dict[str, float]
    checks: list[Check]
    eval_rows: int
    eval_rows_digest: str
    champion_eval_rows_digest: str
    data_version: str
    code_version: str
    experiment_id: str = ""
    released_at: str = ""

    @property
    def promoted(self) -> bool:
        return self.decision == "promoted"

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.passed is False]

    def metadata(self) -> dict[str, Any]:
        """``MaterializeResult`` metadata: numbers as floats (the asset's Plots tab trends them), links
        into the MLflow UI, ISO dates, and empty champion fields when there is no champion."""
        import dagster as dg

        def r(x: float | None) -> Any:
            return dg.MetadataValue.float(round(float(x), 6)) if x is not None and x == x else ""

        _, mlflow_ui = ui_urls()
        md: dict[str, Any] = {
            "family": self.spec.family, "model": self.spec.name, "model_version": self.version,
            "mlflow_run_id": self.run_id, "gate_decision": self.decision, "gate_promoted": self.promoted,
            "gate_reason": self.reason, "gate_metric": self.spec.metric,
            "gate_challenger_score": r(self.challenger_score),
            self.spec.metric: r(self.challenger_score),
            "gate_champion_version": "" if self.champion_version is None else int(self.champion_version),
            "gate_champion_score": r(self.champion_score),
            **{f"baseline_{k}": r(v) for k, v in self.baselines.items()},
            "gate_baselines": ", ".join(self.baselines),
            "eval_rows": self.eval_rows, "eval_rows_digest": self.eval_rows_digest,
            "data_version": self.data_version, "code_version": self.code_version[:12],
            "model_version_url": dg.MetadataValue.url(
                f"{mlflow_ui}/#/models/{self.spec.name}/versions/{self.version}?{ML_WORKFLOW}"),
        }
        if self.run_id and self.experiment_id:
            md["mlflow_run"] = dg.MetadataValue.url(
                f"{mlflow_ui}/#/experiments/{self.experiment_id}/runs/{self.run_id}?{ML_WORKFLOW}")
            md["mlflow_experiment"] = dg.MetadataValue.url(experiment_url(self.experiment_id, mlflow_ui))
        if self.released_at:
            md["released_at"] = self.released_at
        return md


@contextmanager
def _mlflow_save_hints_off() -> Iterator[None]:
    """While a family writes its model directory: MLflow's save-time hints (type hints on ``predict``,
    input examples, CloudPickle caution) address authors of arbitrary pyfuncs; every kforge model is
    saved with an explicit signature and input example and is only ever loaded from this home's
    registry, so they are not something a kforge user can act on."""
    import logging
    import warnings

    loggers = [logging.getLogger(n) for n in ("mlflow.pyfunc", "mlflow.pytorch", "mlflow.models")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\.|$)")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def _now_iso() -> str:
    return f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _experiment_of(client: Any, run_id: str | None) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.experiment_id if run_id else ""
    except MlflowException:
        return ""


def _log_model_entry(client: Any, run: Any, spec: ModelSpec, model_dir: Path) -> None:
    """Record the model as one of the run's "Logged models" (MLflow 3), with the same files."""
    import mlflow

    lm = mlflow.initialize_logged_model(name=spec.name.removeprefix("kforge-"), source_run_id=run.info.run_id,
                                        experiment_id=run.info.experiment_id, tags={"kforge.family": spec.family})
    client.log_model_artifacts(lm.model_id, str(model_dir))
    mlflow.finalize_logged_model(lm.model_id, "READY")


def params_hash(params: dict[str, Any]) -> str:
    blob = json.dumps({str(k): str(v) for k, v in params.items()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(float(v)):
            out[k] = float(v)
    return out


def _latest_version(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    return max(versions, key=lambda mv: int(mv.version), default=None)


def _all_checks(cand: Candidate) -> list[Check]:
    """The candidate's checks, plus a ``beats_<baseline>`` for each named baseline it did not
    check itself, plus a not-run entry for every declared gate that produced no outcome."""
    spec = cand.spec
    have = {c.name: c for c in cand.checks}
    for b in spec.baselines:
        if beats(b) not in have:
            have[beats(b)] = beats_check(spec, b, cand.score, cand.baselines.get(b))
    for g in spec.gate_specs():
        if g.name not in have and g.name != BEATS_CHAMPION:
            have[g.name] = not_run(g.name, "this run produced no outcome for the gate")
    return list(have.values())


def _run_name(spec: ModelSpec, dagster_run_id: str) -> str:
    return f"{spec.name} {datetime.now(UTC):%Y-%m-%d} {(dagster_run_id or 'cli')[:8]}"


def _score_saved(cand: Candidate, model_dir: Path) -> tuple[Scored | None, str]:
    """A saved model scored by the family's champion scorer, or (None, why it could not be)."""
    try:
        return cand.score_registered(model_dir), ""
    except Exception as exc:  # noqa: BLE001 - the caller records it (blocked promotion, failed check)
        return None, f"could not be scored: {type(exc).__name__}: {exc}"[:480]


def _score_champion(tracker: Tracker, cand: Candidate, champ: Any, work: Path) -> tuple[float | None, str, str]:
    """(score, digest of the rows it was scored on, why not) for the registered champion."""
    import mlflow.artifacts

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=champ.source, dst_path=str(work),
                                                    tracking_uri=tracker.tracking_uri)
    except Exception as exc:  # noqa: BLE001 - recorded as the reason promotion is blocked
        return None, "", f"champion v{champ.version} could not be scored: {type(exc).__name__}: {exc}"[:500]
    scored, why = _score_saved(cand, Path(local))
    if scored is None:
        return None, "", f"champion v{champ.version} {why}"
    if scored.score != scored.score:
        return None, rows_digest(scored.keys), f"champion v{champ.version} has no {cand.spec.metric} on these rows"
    return float(scored.score), rows_digest(scored.keys), ""


REPRODUCE_TOL = 1e-6


def _saved_model_check(cand: Candidate, model_dir: Path, digest: str) -> Check:
    """``saved_model_reproduces``: the model as saved, scored by the family's champion scorer, gives the run's own
    score on the same rows. The run's score comes from the model in memory; a model whose saved form scores
    otherwise (a column the serving signature drops, a state not saved) would be promoted on a number it does not
    have. WARN-only: it tells, it does not decide."""
    scored, why = _score_saved(cand, model_dir)
    if scored is None:
        return Check(SAVED_MODEL_REPRODUCES, False, f"the saved model {why}")
    own, saved = float(cand.score), float(scored.score)
    if own != own and saved != saved:
        return not_run(SAVED_MODEL_REPRODUCES, f"no {cand.spec.metric} to reproduce (NaN)")
    if rows_digest(scored.keys) != digest:
        return Check(SAVED_MODEL_REPRODUCES, False, "the saved model was scored on other rows "
                                                    f"(digest {rows_digest(scored.keys)} != {digest})")
    ok = abs(saved - own) <= REPRODUCE_TOL * max(1.0, abs(own))
    return Check(SAVED_MODEL_REPRODUCES, ok, f"{cand.spec.metric}: run {own:.6f}, saved model {saved:.6f}"
                 + ("" if ok else " (the registered model does not score what the run measured)"),
                 {"run": own, "saved": saved, "difference": saved - own})


def _description(spec: ModelSpec, res: dict[str, Any], checks: list[Check], dagster_run_id: str,
                 dagster_url: str) -> str:
    lines = [f"**{res['decision']}**: {res['reason']}", "",
             f"Held-out rows: {res['eval_rows']} (digest `{res['eval_digest']}`); "
             f"data `{res['data_version']}`, code `{res['code_version'][:12]}`.", "",
             f"| model | {spec.metric} |", "|---|---|",
             f"| challenger v{res['version']} | {res['score']:.4f} |"]
    if res["champion_version"] is not None:
        champ = "not scored" if res["champion_score"] is None else f"{res['champion_score']:.4f}"
        lines.append(f"| champion v{res['champion_version']} (rows `{res['champion_digest'] or '-'}`) | {champ} |")
    for b, v in res["baselines"].items():
        lines.append(f"| baseline {b} | {v:.4f} |")
    lines += ["", "Gates: " + ", ".join(
        f"{c.name} {'not run' if c.passed is None else ('passed' if c.passed else 'FAILED')}" for c in checks)]
    if dagster_run_id:
        lines += ["", f"Dagster run: {dagster_url}/runs/{dagster_run_id}"]
    return "\n".join(lines)


RELEASE_LOCK_TIMEOUT_S = 3600.0


@contextmanager
def _one_release_at_a_time(tracker: Tracker, name: str) -> Iterator[None]:
    """Releases of one model in one home run one after the other (the nightly job and a family's
    feedback run may release it at once): the second sees what the first registered, so the same
    data, code and params are registered once and "no champion yet" promotes once."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    with file_lock(tracker.paths.home / f".release-{safe}.lock", exclusive=True, timeout_s=RELEASE_LOCK_TIMEOUT_S):
        yield


def release(tracker: Tracker, cand: Candidate, *, dagster_run_id: str = "", dagster_url: str | None = None) -> ReleaseResult:
    """Log, register, score the champion on the same rows, gate and describe one candidate."""
    with _one_release_at_a_time(tracker, cand.spec.name):
        return _release(tracker, cand, dagster_run_id=dagster_run_id, dagster_url=dagster_url)


def _release(tracker: Tracker, cand: Candidate, *, dagster_run_id: str, dagster_url: str | None) -> ReleaseResult:
    import mlflow

    spec = cand.spec
    client = tracker.client()
    dv = cand.train_table if isinstance(cand.train_table, str) else data_version(cand.train_table)
    cv = code_version()
    ph = params_hash(cand.params)
    digest = rows_digest(cand.eval_keys)
    checks = _all_checks(cand)
    common = dict(spec=spec, challenger_score=float(cand.score), baselines=dict(cand.baselines),
                  eval_rows=len(cand.eval_keys), eval_rows_digest=digest, data_version=dv, code_version=cv)

    latest = _latest_version(client, spec.name)
    if latest is not None:
        t = latest.tags or {}
        same = (t.get(TAG + "data_version"), t.get(TAG + "code_version"), t.get(TAG + "params_hash")) == (dv, cv, ph)
        if same and t.get(TAG + "gate.decision"):  # a version killed before its gate ran is not reused
            champ = aliases.get_alias(client, spec.name, aliases.CHAMPION)
            client.set_model_version_tag(spec.name, str(latest.version), TAG + "last_unchanged_run",
                                         f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {dagster_run_id or 'cli'}")
            reason = f"v{latest.version} has the same data, code and params: nothing registered"
            outcome: Decision = "unchanged"
            if (t.get(TAG + "gate.decision") == "promoted" and aliases.PROMOTION_REASON not in t
                    and (champ is None or int(champ.version) != int(latest.version))):
                # the run that gated it stopped after recording "promoted" and before moving the alias
                aliases.promote(client, spec.name, int(latest.version), t.get(TAG + "gate.reason") or reason)
                champ = aliases.get_alias(client, spec.name, aliases.CHAMPION)
                outcome = "promoted"
                reason = (f"v{latest.version} passed its gate but the run that gated it stopped before making it "
                          f"champion: promotion completed; {reason}")
            checks = [c for c in checks if c.name != BEATS_CHAMPION] + [not_run(BEATS_CHAMPION, reason)]
            return ReleaseResult(decision=outcome, reason=reason, version=int(latest.version),
                                 run_id=latest.run_id or "", champion_version=int(champ.version) if champ else None,
                                 champion_score=None, checks=checks, champion_eval_rows_digest="",
                                 experiment_id=_experiment_of(client, latest.run_id), released_at=_now_iso(), **common)

    asset_key = cand.asset_key or spec.asset_key
    tags = {"data_version": dv, "code_version": cv, "eval_rows_digest": digest, "model_name": spec.name,
            **cand.tags}
    with tempfile.TemporaryDirectory(prefix="kforge-release-") as tmp:
        work = Path(tmp)
        with tracker.run(spec.family, _run_name(spec, dagster_run_id), dagster_run_id=dagster_run_id,
                         asset_key=asset_key, data_version=dv, tags=tags) as run:
            if cand.params:
                mlflow.log_params({k: str(v)[:500] for k, v in cand.params.items()})
            metrics = {**_finite(cand.metrics), spec.metric: float(cand.score),
                       **{f"baseline_{b}_{spec.metric}": float(v) for b, v in cand.baselines.items()}}
            mlflow.log_metrics(_finite(metrics))
            for path in cand.plots:
                mlflow.log_artifact(str(path), "plots")
            for name, text in cand.texts.items():
                mlflow.log_text(text, name)
            mlflow.log_text("\n".join(sorted(str(k) for k in cand.eval_keys)), "eval_rows.txt")
            if cand.log_extra is not None:
                cand.log_extra()
            model_dir = work / "model"
            with _mlflow_save_hints_off():
                cand.save_model(model_dir)
            saved = _saved_model_check(cand, model_dir, digest)
            checks = [c for c in checks if c.name != SAVED_MODEL_REPRODUCES] + [saved]
            if "saved" in saved.numbers:
                mlflow.log_metric(f"saved_model_{spec.metric}", saved.numbers["saved"])
            mlflow.log_dict({c.name: {"passed": c.passed, "detail": c.detail, "numbers": c.numbers} for c in checks},
                            "evaluation_gates.json")
            mlflow.log_artifacts(str(model_dir), "model")
            _log_model_entry(client, run, spec, model_dir)
            run_id, experiment_id = run.info.run_id, run.info.experiment_id
        base = ", ".join(spec.baselines) or "none"
        tracker.describe_model(spec.family, spec.name, f"{spec.metric} ({'higher' if spec.higher_is_better else 'lower'}"
                               f" is better) on held-out rows split by {spec.split}; baselines: {base}")
        version = aliases.register_challenger(client, run_id, "model", spec.name, {
            TAG + "eval_rows_digest": digest, TAG + "data_version": dv, TAG + "code_version": cv,
            TAG + "params_hash": ph, TAG + "dagster_run_id": dagster_run_id or "cli"})

        champ = aliases.get_alias(client, spec.name, aliases.CHAMPION)
        champ_version = int(champ.version) if champ is not None else None
        champ_score, champ_digest, why_not = (None, "", "")
        if champ is not None:
            champ_score, champ_digest, why_not = _score_champion(tracker, cand, champ, work / "champion")
            if not why_not and champ_digest != digest:
                why_not = (f"champion v{champ_version} was scored on other rows "
                           f"(digest {champ_digest} != {digest})")

    failed = sorted(c.name for c in checks if spec.blocks(c))
    if failed:
        decision: Decision = "blocked"
        reason = "blocked by gates: " + ", ".join(
            f"{n} ({'not run' if next(c for c in checks if c.name == n).passed is None else 'failed'})" for n in failed)
        if why_not:
            reason += f"; {why_not}"
        champ_check = Check(BEATS_CHAMPION, None, "not decided: a blocking gate failed") if champ is None else None
    elif cand.score != cand.score:  # NaN: the challenger was not measured, so nothing was passed
        decision, reason = "blocked", f"the challenger has no {spec.metric} on the held-out rows (NaN)"
        if why_not:
            reason += f"; {why_not}"
        champ_check = Check(BEATS_CHAMPION, False, reason)
    elif champ is None:
        decision, reason = "promoted", "no champion yet; every blocking gate passed"
        champ_check = Check(BEATS_CHAMPION, True, reason)
    elif why_not:
        decision, reason = "blocked", why_not
        champ_check = Check(BEATS_CHAMPION, False, why_not)
    else:
        assert champ_score is not None
        delta = spec.better(float(cand.score), champ_score)
        better = delta > spec.min_delta
        decision = "promoted" if better else "blocked"
        reason = (f"challenger {spec.metric} {cand.score:.4f} vs champion v{champ_version} {champ_score:.4f} "
                  f"({delta:+.4f}, needs > {spec.min_delta:g}) on the same {len(cand.eval_keys)} rows")
        champ_check = Check(BEATS_CHAMPION, better, reason,
                            {"challenger": round(float(cand.score), 4), "champion": round(champ_score, 4),
                             "delta": round(delta, 4)})
    if champ_check is None:  # blocked by a gate while a champion exists: still report the comparison
        if why_not:
            champ_check = Check(BEATS_CHAMPION, False, why_not)
        else:
            assert champ_score is not None
            delta = spec.better(float(cand.score), champ_score)
            champ_check = Check(BEATS_CHAMPION, delta > spec.min_delta,
                                f"{spec.metric} {cand.score:.4f} vs champion v{champ_version} {champ_score:.4f}",
                                {"challenger": round(float(cand.score), 4), "champion": round(champ_score, 4),
                                 "delta": round(delta, 4)})
    checks = [c for c in checks if c.name != BEATS_CHAMPION] + [champ_check]

    vtags = {
        TAG + "gate.decision": decision, TAG + "gate.reason": reason[:500], TAG + "gate.metric": spec.metric,
        TAG + "gate.challenger_score": f"{cand.score:.6f}",
        TAG + "gate.champion_version": "" if champ_version is None else str(champ_version),
        TAG + "gate.champion_score": "" if champ_score is None else f"{champ_score:.6f}",
        TAG + "gate.champion_eval_rows_digest": champ_digest,
        TAG + "gate.failed": ",".join(failed),
        **{f"{TAG}baseline.{b}": f"{v:.6f}" for b, v in cand.baselines.items()},
    }
    for k, v in vtags.items():
        client.set_model_version_tag(spec.name, str(version), k, v)
    for k, v in (("gate_decision", decision), ("gate_reason", reason[:500]), ("model_version", str(version))):
        client.set_tag(run_id, k, v)
    summary = {"decision": decision, "reason": reason, "eval_rows": len(cand.eval_keys), "eval_digest": digest,
               "data_version": dv, "code_version": cv, "version": version, "score": float(cand.score),
               "champion_version": champ_version, "champion_score": champ_score, "champion_digest": champ_digest,
               "baselines": cand.baselines}
    client.update_model_version(spec.name, str(version),
                                description=_description(spec, summary, checks, dagster_run_id, dagster_url or ui_urls()[0]))
    if decision == "promoted":  # last: a version is champion only once its decision is recorded
        aliases.promote(client, spec.name, version, reason)
    return ReleaseResult(decision=decision, reason=reason, version=version, run_id=run_id,
                         champion_version=champ_version,
                         champion_score=champ_score, checks=checks, champion_eval_rows_digest=champ_digest,
                         experiment_id=experiment_id, released_at=_now_iso(), **common)
