"""Score commits or patch e-mails with a registered acceptance model (default: the champion).

Input kinds (detected from the file):
* commits: a parquet with the commit-table schema (``../shared/data/kernel/*.commits.parquet``,
  nested ``files``); history features use the warehouse's stored commits of the same repository
  plus the file itself, as of each commit's time;
* e-mails: a parquet with the acceptance e-mail schema (``raw_email`` ...), or an mbox/.patch/.eml.
Output: ``sha``/``email_id``, ``p_defect``/``p_merged``, ``top_features`` (XGBoost contributions).
"""

from pathlib import Path

import polars as pl

from kforge.acceptance.spec import TargetSpec, spec_for
from kforge.errors import InputError
from kforge.registry import Tracker
from kforge.storage import Warehouse


def detect_target(path: Path) -> str:
    if path.suffix in (".mbox", ".patch", ".eml", ".mail"):
        return "email"
    if path.suffix != ".parquet":
        raise InputError(f"{path}: unsupported input (use a .parquet commit/e-mail table or an .mbox/.patch file)")
    cols = _parquet(path, schema_only=True)
    if "raw_email" in cols:
        return "email"
    if "sha" in cols and "subject" in cols:
        return "commit"
    raise InputError(f"{path}: neither a commit table (sha, subject, files, ...) nor an e-mail table (raw_email, ...)")


def _parquet(path: Path, schema_only: bool = False) -> "pl.DataFrame | pl.Schema":
    """The parquet file (or its schema); a file that is not one is the user's input error."""
    try:
        return pl.read_parquet_schema(path) if schema_only else pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path} is not a readable parquet file: {exc}") from None


def commit_rows(path: Path, wh: Warehouse) -> pl.DataFrame:
    from kforge.features.build import build_patch_features, files_from_commit_files, normalize_commits

    new = normalize_commits(_parquet(path))
    if "repo" not in new.columns:
        new = new.with_columns(pl.lit(path.name.split(".")[0]).alias("repo"))
    files = files_from_commit_files(new)
    diffs = _diffs(new, wh)
    if wh.has_table("commits") and wh.has_table("file_changes"):
        repos = new["repo"].unique().to_list()
        old = wh.read_table("commits").filter(pl.col("repo").is_in(repos) & ~pl.col("sha").is_in(new["sha"].implode()))
        if old.height:
            old_files = wh.read_table("file_changes").join(old.select("repo", "sha"), on=["repo", "sha"], how="semi")
            common = [c for c in new.columns if c in old.columns]
            new = pl.concat([old.select(common), new.select(common)], how="vertical_relaxed")
            files = pl.concat([old_files.select(files.columns), files], how="vertical_relaxed")
    wanted = pl.read_parquet(path, columns=["sha"])["sha"]
    origins = line_origins_for(new, wh, wanted.to_list())
    return build_patch_features(new, files, diffs=diffs, line_origins=origins).filter(pl.col("sha").is_in(wanted.implode()))


def line_origins_for(commits: pl.DataFrame, wh: Warehouse, wanted: list[str]) -> pl.DataFrame | None:
    """Line-origin features of the ``wanted`` commits: the stored ``patch_features`` rows when they
    all have them (a commit's line origins never change: they depend only on its own past), else
    replayed from the registered clones of the commits' repositories (None without one)."""
    from kforge.features.build import event_times_for
    from kforge.features.line_origins import LINE_ORIGIN_NUMERIC, for_repositories

    if wh.has_table("patch_features") and "has_line_origins" in wh.read("select * from patch_features limit 0").columns:
        cached = wh.read(f"select sha, {', '.join(LINE_ORIGIN_NUMERIC)} from patch_features "
                         "where has_line_origins = 1").filter(pl.col("sha").is_in(wanted))
        if set(wanted) <= set(cached["sha"].to_list()):
            return cached
    from kforge.git.ingest import registered_repositories

    mine = set(commits["repo"].unique().to_list())
    repos = {r: p for r, p in registered_repositories(wh).items() if r in mine}
    return for_repositories(repos, commits, event_times_for(commits))[0] if repos else None


def check_line_origins(model: object, rows: pl.DataFrame) -> None:
    """A model trained with line-origin features cannot score commits whose line origins are unknown
    (zeros would read as "touches no lines"): say so instead of returning wrong scores."""
    from kforge.features.line_origins import LINE_ORIGIN_NUMERIC

    if "has_line_origins" not in getattr(model, "numeric", []):
        return
    missing = rows.filter(pl.col("has_line_origins") < 1)
    if missing.height:
        raise InputError(
            f"{missing.height} of {rows.height} commits have no line origins (e.g. {missing['sha'][0]}), but this "
            f"model uses them ({len(LINE_ORIGIN_NUMERIC)} lo_* features): register the repository's clone "
            "(`kforge ingest PATH`) with these commits on its first-parent history, or score with a version "
            "trained without a clone (`--alias`)")


def _diffs(commits: pl.DataFrame, wh: Warehouse) -> pl.DataFrame | None:
    """Diffs for the diff-content features: a ``diff`` column of the input, else ``commit_diffs``."""
    if "diff" in commits.columns:
        return commits.select("sha", "diff", pl.lit(False).alias("truncated")).drop_nulls("diff")
    if wh.has_table("commit_diffs"):
        return wh.read_table("commit_diffs").select("sha", "diff", "truncated").join(
            commits.select("sha"), on="sha", how="semi")
    return None


def email_rows(path: Path, wh: Warehouse | None = None) -> pl.DataFrame:
    """Features of the file's patch e-mails. Sender and title history (prior e-mails, merges, versions,
    tenure) count the stored ``mail_patches`` too, as training did, not only the scored file."""
    from kforge.acceptance.email_features import email_frame
    from kforge.acceptance.pipeline import EMAIL_TABLE
    from kforge.mail.reader import read_patch_emails

    mails = read_patch_emails(path).frame if path.suffix != ".parquet" else _parquet(path)
    if wh is None or not wh.has_table(EMAIL_TABLE) or "archive_commit" not in mails.columns:
        return email_frame(mails)
    stored = wh.read_table(EMAIL_TABLE).filter(~pl.col("archive_commit").is_in(mails["archive_commit"].implode()))
    if not stored.height:
        return email_frame(mails)
    wanted = mails["archive_commit"]
    both = pl.concat([stored.select([c for c in mails.columns if c in stored.columns]), mails], how="diagonal_relaxed")
    return email_frame(both).filter(pl.col("email_id").is_in(wanted.implode()))


def score_file(path: str | Path, wh: Warehouse, tracker: Tracker, target: str = "auto", alias: str = "champion",
               top_k: int = 3) -> pl.DataFrame:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    target = detect_target(p) if target == "auto" else target
    spec: TargetSpec = spec_for(target)
    rows = commit_rows(p, wh) if target == "commit" else email_rows(p, wh)
    if rows.height == 0:
        raise InputError(f"{p}: nothing to score (no non-merge commits / patch e-mails)")
    import time

    from kforge.monitoring.calls import record_call
    from kforge.monitoring.items import Item

    model = load_model(tracker, spec, alias)
    if target == "commit":
        check_line_origins(model, rows)
    version = tracker.version_of(spec.model_name, alias)
    threshold = float(getattr(model, "threshold", 0.5))
    started = time.perf_counter()
    p_hat = model.predict_proba(rows)
    out = pl.DataFrame({spec.id_col: rows[spec.id_col], spec.score_col: p_hat,
                        "top_features": model.top_features(rows, top_k),
                        "cold_start": model.unseen(rows)})  # a repository the model never trained on: scored in cold-start mode
    items = [Item(f"{target}:{str(i).lower()}", "outcome", "true" if score >= threshold else "false", float(score))
             for i, score in zip(out[spec.id_col].to_list(), p_hat, strict=True)]
    record_call(wh, "acceptance", spec.model_name, version if version is not None else alias, started, out.height,
                batch_ref=p.name, inputs=rows.select(spec.numeric), items=items)
    return out


def load_model(tracker: Tracker, spec: TargetSpec, alias: str):  # noqa: ANN201
    import mlflow.pyfunc

    if tracker.champion(spec.model_name) is None and alias == "champion":
        raise InputError(f"{spec.model_name} has no champion yet: train it (materialize the acceptance group, or "
                         f"`kforge acceptance train --target {spec.target}`) or promote a version")
    try:
        loaded = mlflow.pyfunc.load_model(tracker.model_uri(spec.model_name, alias))
    except Exception as exc:
        raise InputError(f"cannot load {spec.model_name}@{alias}: {exc}") from None
    return loaded.unwrap_python_model().model
