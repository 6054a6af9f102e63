"""What an in-process materialization prints: one line per asset as it finishes, then a summary.

``run_config(total)`` keeps Dagster's console logger at WARNING (no DEBUG event stream) and adds
``kforge_progress``, a logger that prints ``[ n/N] ok   asset  12.3 s`` when a step finishes.
``summary_rows`` reads one finished run's events (release metadata, asset checks) and the
registry's aliases into the demo's closing table.
"""

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import dagster as dg
from dagster._core.log_manager import get_log_record_metadata, has_log_record_metadata

PROGRESS_LOGGER = "kforge_progress"
CONSOLE_LOGGER = "console"


class _StepLineHandler(logging.Handler):
    def __init__(self, total: int, stream: TextIO) -> None:
        super().__init__(level=logging.DEBUG)
        self.total, self.done, self.stream = total, 0, stream

    def emit(self, record: logging.LogRecord) -> None:
        if not has_log_record_metadata(record):
            return
        event = get_log_record_metadata(record).get("dagster_event")
        if event is None or not (event.is_step_success or event.is_step_failure):
            return
        self.done += 1
        n = f"[{self.done:>{len(str(self.total))}}/{self.total}]" if self.total else f"[{self.done}]"
        if event.is_step_success:
            secs = event.step_success_data.duration_ms / 1000.0
            line = f"{n} ok    {event.step_key:<34} {secs:7.1f} s"
        else:
            err = event.step_failure_data.error
            why = (err.message.strip().splitlines() or [""])[-1][:160] if err is not None else "failed"
            line = f"{n} FAIL  {event.step_key:<34} {why}"
        print(line, file=self.stream, flush=True)


@dg.logger(config_schema={"total": dg.Field(int, default_value=0)},
           description="One line per finished step with its duration (kforge materialize, make demo).")
def kforge_progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    log = logging.getLogger(f"kforge.progress.{init_context.run_id}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.handlers = [_StepLineHandler(int(init_context.logger_config.get("total", 0)), sys.stdout)]
    return log


def logger_defs() -> dict[str, dg.LoggerDefinition]:
    """The loggers of kforge's in-process jobs: Dagster's console logger and the progress lines."""
    from dagster._loggers import colored_console_logger

    return {CONSOLE_LOGGER: colored_console_logger, PROGRESS_LOGGER: kforge_progress_logger}


def run_config(total: int, console_level: str = "WARNING") -> dict[str, Any]:
    """Run config selecting both loggers: the console at ``console_level``, progress lines for ``total`` steps."""
    return {"loggers": {CONSOLE_LOGGER: {"config": {"log_level": console_level}},
                        PROGRESS_LOGGER: {"config": {"total": int(total)}}}}


@dataclass
class SummaryRow:
    family: str
    model: str
    asset: str
    version: str = ""
    decision: str = ""
    champion: str = ""
    metric: str = ""
    score: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    note: str = ""


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def failed_check_evaluations(result: Any) -> list[Any]:
    """The run's asset checks that ran and failed (a check reported "not run" is not a failure)."""
    return [ev for ev in result.get_asset_check_evaluations()
            if not ev.passed and _value((ev.metadata or {}).get("status")) != "not run"]


def summary_rows(result: Any, champion_of: Any = None) -> list[SummaryRow]:
    """One row per model an in-process run released (or skipped), from its materialization metadata
    (``release_metadata``) and its failed asset checks. ``champion_of(model) -> version | None``
    says which version is champion now (None: unknown)."""
    rows: list[SummaryRow] = []
    by_asset: dict[str, list[SummaryRow]] = {}
    records = [(ev.step_materialization_data.materialization, False)
               for ev in result.get_asset_materialization_events()]
    records += [(ev.asset_observation_data.asset_observation, True) for ev in result.get_asset_observation_events()]
    for mat, observed in records:
        md = {k: _value(v) for k, v in (mat.metadata or {}).items()}
        asset = mat.asset_key.to_user_string()
        family = str(md.get("family") or "")
        skipped = observed and "skipped" in md
        if "model" not in md and not skipped:
            continue
        model = str(md.get("model") or asset)
        row = SummaryRow(family=family, model=model, asset=asset)
        if skipped:
            row.decision = "skipped"
            row.note = str(md.get("skipped") or "")
        else:
            row.version = str(md.get("model_version") or "")
            row.decision = str(md.get("gate_decision") or "")
            row.metric = str(md.get("gate_metric") or "")
            row.score = _float(md.get("gate_challenger_score"))
            names = [b.strip() for b in str(md.get("gate_baselines") or "").split(",") if b.strip()]
            row.baselines = {b: f for b in names if (f := _float(md.get(f"baseline_{b}"))) is not None}
            row.note = str(md.get("gate_reason") or "")
            if champion_of is not None and row.version:
                champ = champion_of(model)
                row.champion = "yes" if champ is not None and str(champ) == row.version else "no"
        rows.append(row)
        by_asset.setdefault(asset, []).append(row)
    for ev in failed_check_evaluations(result):
        asset = ev.asset_key.to_user_string()
        md = {k: _value(v) for k, v in (ev.metadata or {}).items()}
        target = by_asset.get(asset)
        detail = str(md.get("detail") or ev.description or "")[:120]
        label = f"{ev.check_name}: {detail}" if detail else ev.check_name
        if target:
            target[-1].failed_checks.append(label)
    return rows


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def format_summary(rows: list[SummaryRow]) -> str:
    """The closing table: family | model | version | decision | champion | metric vs baselines | failed checks."""
    if not rows:
        return "no model was trained in this run"
    head = ("family", "model", "version", "decision", "champion", "held-out metric vs baseline")
    body = []
    for r in rows:
        if r.decision == "skipped":
            vs = f"skipped: {r.note}"[:70]
        else:
            base = ", ".join(f"{b} {_fmt(v)}" for b, v in sorted(r.baselines.items()))
            vs = f"{r.metric} {_fmt(r.score)}" + (f" vs {base}" if base else "")
        body.append((r.family, r.model, r.version, r.decision, r.champion, vs))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in body]
    failed = [(r.model, c) for r in rows for c in r.failed_checks]
    if failed:
        out.append("")
        out.append("failed checks (a failed blocking gate keeps a model from promotion; the decision column says "
                   "what happened):")
        out += [f"  {m}  {c}" for m, c in failed]
    return "\n".join(out)
