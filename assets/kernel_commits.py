"""Asset group ``kernel_commits``: git history ingestion and the tables derived from it.

Thin: every asset loads its inputs through the warehouse resource, calls one library function
and returns metadata. Ingestion is partitioned by repository (dynamic partitions, added by
``kforge ingest`` or the ``repository_sensor``).
"""

import dagster as dg
import polars as pl
from kforge.commits.chains import build_chains, commit_labels
from kforge.commits.expertise import author_expertise
from kforge.commits.tags import rule_docs, tag_commits
from kforge.dagster_io import DataResource, WarehouseResource
from kforge.dagster_io.metadata import table_md
from kforge.git.importer import import_commits
from kforge.git.ingest import ingest_repository, repository_path
from kforge.git.maintainers import maintainers_at_head
from kforge.git.subsystems import SubsystemRules
from pydantic import Field

GROUP = "kernel_commits"
repositories = dg.DynamicPartitionsDefinition(name="repositories")


class IngestConfig(dg.Config):
    ref: str = Field(default="HEAD", description="Branch, tag or sha whose history is ingested.")
    batch_size: int = Field(default=2000, description="Commits written per transaction.")
    detect_renames: bool = Field(default=False, description="Detect renames/copies (R/C change types); slower.")
    subsystem_rules: str = Field(default="", description="Path to a subsystem rules JSON; empty = kernel defaults.")


@dg.multi_asset(
    specs=[
        dg.AssetSpec("commits", group_name=GROUP, description="One row per commit: metadata, trailers, Fixes:, totals."),
        dg.AssetSpec("file_changes", group_name=GROUP, description="One row per (commit, path): change type, lines, subsystem."),
        dg.AssetSpec("ingest_quarantine", group_name=GROUP, description="What could not be parsed, and why."),
    ],
    partitions_def=repositories,
    can_subset=False,
)
def ingest_commits(context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource):
    """Incremental ingestion of one repository (the partition)."""
    wh = warehouse.get()
    repo = context.partition_key
    rules = SubsystemRules.load(config.subsystem_rules or None)
    report = ingest_repository(repository_path(wh, repo), wh, name=repo, ref=config.ref,
                               batch_size=config.batch_size, rules=rules, detect_renames=config.detect_renames)
    q = wh.read("select stage, reason, count(*) as n from ingest_quarantine where repo = ? group by 1, 2",
                [repo]) if wh.has_table("ingest_quarantine") else pl.DataFrame()
    common = {"repo": repo, "head": report.head or ""}
    yield dg.MaterializeResult(asset_key="commits", metadata={
        **common, "commits_added": report.commits_added, "commits_in_history": report.commits_in_history,
        "already_stored": report.already_stored, "batches": report.batches,
        "dagster/row_count": wh.count("commits"),
    })
    yield dg.MaterializeResult(asset_key="file_changes", metadata={
        **common, "files_added": report.files_added, "dagster/row_count": wh.count("file_changes")})
    yield dg.MaterializeResult(asset_key="ingest_quarantine", metadata={
        **common, "quarantined_this_run": report.quarantined, "by_reason": table_md(q),
        "notes": "; ".join(report.notes) or "none"})


@dg.asset(group_name=GROUP, deps=["commits"], description="Commits imported from parquet tables in the real-data directory.")
def imported_commits(context: dg.AssetExecutionContext, warehouse: WarehouseResource, data: DataResource) -> dg.MaterializeResult:
    """With ``--data``/``KFORGE_DATA`` set, load ``kernel/*.commits.parquet`` (idempotent)."""
    root = data.root()
    files = sorted((root / "kernel").glob("*.commits.parquet")) if root else []
    results = {f.name: import_commits(f, warehouse.get()) for f in files}
    for name, res in results.items():
        context.log.info(f"{name}: {res}")
    return dg.MaterializeResult(metadata={
        "data_dir": str(root) if root else "(embedded defaults: nothing to import)",
        "files": len(files), "commits_added": sum(r["commits_added"] for r in results.values()),
    })


def _commits(warehouse: WarehouseResource) -> pl.DataFrame:
    return warehouse.get().read_table("commits")


@dg.asset(group_name=GROUP, deps=["commits", "imported_commits"], description="Rule-based tags per commit (security, bugfix, revert, ...).")
def commit_tags(warehouse: WarehouseResource) -> dg.MaterializeResult:
    tags = tag_commits(_commits(warehouse))
    warehouse.get().replace("commit_tags", tags)
    counts = tags.group_by("tag").agg(pl.col("sha").n_unique().alias("commits")).sort("tag")
    return dg.MaterializeResult(metadata={"dagster/row_count": tags.height, "commits_per_tag": table_md(counts),
                                          "rules": table_md(pl.DataFrame(rule_docs()))})


@dg.asset(group_name=GROUP, deps=["commits", "imported_commits"], description="Fix -> buggy and revert -> reverted commit links.")
def commit_chains(warehouse: WarehouseResource) -> dg.MaterializeResult:
    commits = _commits(warehouse)
    chains = build_chains(commits)
    wh = warehouse.get()
    wh.replace("commit_chains", chains)
    labels = commit_labels(commits, chains)
    wh.replace("commit_labels", labels.select("repo", "sha", "fixed_later", "reverted", "first_fix_ts"))
    by = chains.group_by("kind", "resolved_by").len().sort("kind", "resolved_by")
    unresolved = int((chains["resolved_by"] == "unresolved").sum())
    return dg.MaterializeResult(metadata={
        "dagster/row_count": chains.height, "unresolved": unresolved, "resolution": table_md(by),
        "fixed_later_commits": int(labels["fixed_later"].sum()), "reverted_commits": int(labels["reverted"].sum()),
    })


@dg.asset(name="author_expertise", group_name=GROUP, deps=["commits", "file_changes", "imported_commits"],
          description="Per commit and subsystem: the author's prior commits (point in time) and maintainer status.")
def author_expertise_table(warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    commits, files = _commits(warehouse), wh.read_table("file_changes")
    repos = wh.read_table("repositories") if wh.has_table("repositories") else pl.DataFrame()
    rules = SubsystemRules.load()
    from pathlib import Path

    maint = [maintainers_at_head(Path(p), r, rules) for r, p in repos.select("repo", "path").iter_rows()
             if Path(p).exists()] if repos.height else []
    maint_df = pl.concat(maint) if maint else None
    if maint_df is not None:
        wh.replace("maintainers", maint_df)
    exp = author_expertise(commits, files, maint_df)
    wh.replace("author_expertise", exp)
    top = (exp.group_by("repo", "author_email").agg(pl.len().alias("commit_subsystems"))
           .sort("commit_subsystems", descending=True).head(10))
    return dg.MaterializeResult(metadata={"dagster/row_count": exp.height, "top_authors": table_md(top),
                                          "maintainer_rows": 0 if maint_df is None else maint_df.height})


class DiffsConfig(dg.Config):
    max_commits_per_repo: int = Field(default=5000, description="Most recent non-merge commits per repository whose diffs are kept.")
    max_bytes: int = Field(default=65536, description="Diffs are truncated at this size (flag `truncated`).")


@dg.asset(group_name=GROUP, deps=["commits", "imported_commits"], description="Unified diffs of recent commits (generation corpus).")
def commit_diffs(context: dg.AssetExecutionContext, config: DiffsConfig, warehouse: WarehouseResource,
                 data: DataResource) -> dg.MaterializeResult:
    from kforge.commits.diffs_table import collect_diffs

    wh = warehouse.get()
    frame, failed = collect_diffs(wh, data.root(), config.max_commits_per_repo, config.max_bytes)
    wh.replace("commit_diffs", frame)
    return dg.MaterializeResult(metadata={"dagster/row_count": frame.height, "not_diffable": len(failed),
                                          "truncated": int(frame["truncated"].sum()) if frame.height else 0})


class ExportConfig(dg.Config):
    modes: list[str] = Field(default=["standard", "commit-message", "bugfix", "security"],
                             description="Export modes to write (standard, commit-message, bugfix, security).")
    min_quality: float = Field(default=0.3, description="Minimum heuristic quality score (0..1).")
    exclude_tags: list[str] = Field(default=["revert"], description="Drop commits carrying any of these tags.")
    test_fraction: float = Field(default=0.1, description="Newest fraction of rows marked split=test.")


EXPORT_CHECK = "export_is_valid"


@dg.asset(group_name=GROUP, deps=["commit_diffs", "commit_tags", "commit_chains"],
          check_specs=[dg.AssetCheckSpec(EXPORT_CHECK, asset="training_exports",
                                         description="Schema, no empty rows, no duplicate patch ids, no train/test leakage.")],
          description="JSONL training-data exports (+ axolotl YAML) under KFORGE_HOME/exports.")
def training_exports(config: ExportConfig, warehouse: WarehouseResource):
    from kforge.commits.export import ExportFilters, build_export, validate_export, write_export

    wh = warehouse.get()
    out_dir = warehouse.paths().exports
    filters = ExportFilters(min_quality=config.min_quality, exclude_tags=list(config.exclude_tags),
                            test_fraction=config.test_fraction)
    summaries, problems = [], {}
    for mode in config.modes:
        rows = build_export(wh, mode, filters)
        summary = write_export(rows, out_dir / f"{mode}.jsonl", mode)
        summaries.append({"mode": mode, **{k: summary[k] for k in ("rows", "train", "test", "path")}})
        found = validate_export(summary["path"]) if rows.height else []
        if found:
            problems[mode] = found
    table = pl.DataFrame(summaries)
    yield dg.MaterializeResult(metadata={"exports": table_md(table), "dagster/row_count": int(table["rows"].sum()),
                                         "directory": str(out_dir)})
    yield dg.AssetCheckResult(check_name=EXPORT_CHECK, passed=not problems,
                              metadata={"problems": "; ".join(f"{m}: {p[:3]}" for m, p in problems.items()) or "none"})


defs = dg.Definitions(assets=[ingest_commits, imported_commits, commit_tags, commit_chains,
                              author_expertise_table, commit_diffs, training_exports])
__all__ = ["defs", "repositories"]
