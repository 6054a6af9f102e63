"""Training-data exports (JSONL, alpaca-style ``instruction``/``input``/``output`` + metadata).

Modes:
* ``standard``: commit message -> diff;
* ``commit-message``: diff -> commit message;
* ``bugfix``: buggy commit (message + diff) -> the fixing diff, pairs from ``commit_chains``;
* ``security``: like ``standard`` restricted to commits tagged ``security``.

Rows are deduplicated by patch id (backports and cherry-picks keep the earliest), filtered by
quality score, tags, subsystems and date, and split by time (the newest ``test_fraction`` is
``test``; a patch id never appears on both sides). The train and test rows are also written to
separate files, which the axolotl-style YAML beside each export trains and evaluates on. :func:`validate_export` is what the asset check runs.
With ``--llm-score`` rows above a heuristic floor also carry a language model's ``llm_score``
(1-5) and ``llm_reason`` (:func:`kforge.commits.quality.llm_quality`).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from kforge.commits.patchid import patch_ids
from kforge.commits.quality import quality_score
from kforge.errors import InputError
from kforge.git.rows import without_shallow_boundaries
from kforge.storage import Warehouse

MODES = ("standard", "commit-message", "bugfix", "security")
REQUIRED_KEYS = ("id", "mode", "instruction", "input", "output", "repo", "sha", "date", "subsystem", "tags",
                 "quality", "patch_id", "split")


@dataclass
class ExportFilters:
    min_quality: float = 0.0
    tags: list[str] = field(default_factory=list)
    exclude_tags: list[str] = field(default_factory=list)
    subsystems: list[str] = field(default_factory=list)
    since: str | None = None
    until: str | None = None
    repos: list[str] = field(default_factory=list)
    limit: int | None = None
    test_fraction: float = 0.1

    def check(self) -> None:
        if not 0.0 <= self.min_quality <= 1.0:
            raise InputError(f"--min-quality must be within 0..1, got {self.min_quality}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise InputError(f"--test-fraction must be within [0, 1), got {self.test_fraction}")
        if self.limit is not None and self.limit <= 0:
            raise InputError(f"--limit must be positive, got {self.limit}")
        for d in (self.since, self.until):
            if d is not None:
                try:
                    pl.Series([d]).str.to_date("%Y-%m-%d")
                except Exception:
                    raise InputError(f"dates must be YYYY-MM-DD, got {d!r}") from None


def _base(wh: Warehouse) -> pl.DataFrame:
    for t in ("commits", "commit_diffs"):
        if not wh.has_table(t):
            raise InputError(f"table {t!r} is missing: ingest a repository and materialize `commit_diffs` first")
    commits = without_shallow_boundaries(wh.read_table("commits"))
    diffs = wh.read("select repo, sha, diff, truncated from commit_diffs")
    tags = wh.read("select repo, sha, list(distinct tag order by tag) as tags from commit_tags group by 1, 2") \
        if wh.has_table("commit_tags") else pl.DataFrame(schema={"repo": pl.String, "sha": pl.String, "tags": pl.List(pl.String)})
    subsystem = wh.read(
        "select repo, sha, mode(subsystem) as subsystem from file_changes group by 1, 2") if wh.has_table("file_changes") \
        else pl.DataFrame(schema={"repo": pl.String, "sha": pl.String, "subsystem": pl.String})
    df = (commits.join(diffs, on=["repo", "sha"], how="inner")
          .join(tags, on=["repo", "sha"], how="left").join(subsystem, on=["repo", "sha"], how="left")
          .with_columns(pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.String))),
                        pl.lit(True).alias("has_diff")))
    return df.with_columns(quality_score(df), patch_ids(df["diff"]),
                           pl.from_epoch("author_ts").dt.strftime("%Y-%m-%d").alias("date"))


def _message(subject: pl.Expr, body: pl.Expr) -> pl.Expr:
    return pl.concat_str([subject, pl.lit("\n\n"), body.fill_null("")]).str.strip_chars()


def _rows(df: pl.DataFrame, mode: str, wh: Warehouse) -> pl.DataFrame:
    msg = _message(pl.col("subject"), pl.col("body"))
    if mode in ("standard", "security"):
        if mode == "security":
            df = df.filter(pl.col("tags").list.contains("security"))
        return df.with_columns(pl.lit("Write the patch (unified diff) for this commit message.").alias("instruction"),
                               msg.alias("input"), pl.col("diff").alias("output"))
    if mode == "commit-message":
        return df.with_columns(pl.lit("Write a kernel-style commit message for this diff.").alias("instruction"),
                               pl.col("diff").alias("input"), msg.alias("output"))
    # bugfix: buggy -> fix
    if not wh.has_table("commit_chains"):
        raise InputError("bugfix export needs `commit_chains`: materialize it first")
    chains = wh.read("select repo, fix_sha, target_sha from commit_chains where kind = 'fixes' and target_sha is not null")
    buggy = df.select("repo", pl.col("sha").alias("target_sha"), pl.col("diff").alias("buggy_diff"),
                      msg.alias("buggy_message"))
    pairs = df.join(chains, left_on=["repo", "sha"], right_on=["repo", "fix_sha"], how="inner").join(
        buggy, on=["repo", "target_sha"], how="inner")
    return pairs.with_columns(
        pl.lit("This commit introduced a bug. Write the fixing patch (unified diff).").alias("instruction"),
        pl.concat_str([pl.col("buggy_message"), pl.lit("\n\n"), pl.col("buggy_diff")]).alias("input"),
        pl.col("diff").alias("output"))


def build_export(wh: Warehouse, mode: str, filters: ExportFilters | None = None) -> pl.DataFrame:
    """The export rows (not yet written)."""
    if mode not in MODES:
        raise InputError(f"unknown export mode {mode!r}; choose one of {', '.join(MODES)}")
    f = filters or ExportFilters()
    f.check()
    df = _base(wh).filter(~pl.col("is_merge"))
    if f.repos:
        df = df.filter(pl.col("repo").is_in(f.repos))
    if f.since:
        df = df.filter(pl.col("date") >= f.since)
    if f.until:
        df = df.filter(pl.col("date") <= f.until)
    if f.subsystems:
        df = df.filter(pl.col("subsystem").is_in(f.subsystems) | pl.col("subject_prefix").is_in(f.subsystems))
    if f.tags:
        df = df.filter(pl.col("tags").list.set_intersection(f.tags).list.len() > 0)
    if f.exclude_tags:
        df = df.filter(pl.col("tags").list.set_intersection(f.exclude_tags).list.len() == 0)
    df = df.filter(pl.col("quality") >= f.min_quality)
    rows = _rows(df, mode, wh)
    # dedup: empty diffs out, one row per patch id (earliest wins: backports/cherry-picks dropped)
    rows = (rows.filter((pl.col("output").str.len_chars() > 0) & (pl.col("input").str.len_chars() > 0)
                        & (pl.col("patch_id") != ""))
            .sort("author_ts").unique(subset=["patch_id"], keep="first", maintain_order=True))
    if f.limit:
        rows = rows.tail(f.limit)
    n_test = int(round(rows.height * f.test_fraction))
    rows = rows.with_columns(
        pl.when(pl.int_range(pl.len()) >= pl.len() - n_test).then(pl.lit("test")).otherwise(pl.lit("train")).alias("split"))
    return rows.select(
        pl.concat_str([pl.col("repo"), pl.lit(":"), pl.col("sha").str.slice(0, 12), pl.lit(":"), pl.lit(mode)]).alias("id"),
        pl.lit(mode).alias("mode"), "instruction", "input", "output", "repo", "sha", "date",
        pl.col("subsystem").fill_null(""), "tags", "quality", "patch_id", "split")


def _split_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.stem + ".train.jsonl"), out.with_name(out.stem + ".test.jsonl")


def _write_atomic(rows: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    rows.write_ndjson(tmp)
    tmp.replace(path)  # atomic: a killed export never leaves a half file under the final name


def write_export(rows: pl.DataFrame, out: str | Path, mode: str) -> dict[str, Any]:
    """Write JSONL (every row, with its split) plus the time-split ``.train.jsonl`` and
    ``.test.jsonl`` files, and an axolotl-style YAML beside them that trains on the train file and
    evaluates on the test file; return a summary."""
    out = Path(out)
    if out.suffix != ".jsonl":
        raise InputError(f"--out must end in .jsonl, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    train_path, test_path = _split_paths(out)
    _write_atomic(rows.filter(pl.col("split") == "train"), train_path)
    _write_atomic(rows.filter(pl.col("split") == "test"), test_path)
    _write_atomic(rows, out)
    cfg = {
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "adapter": "lora", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "lora_target_linear": True,
        "datasets": [{"path": str(train_path), "type": "alpaca", "ds_type": "json"}],
        "test_datasets": [{"path": str(test_path), "type": "alpaca", "ds_type": "json", "split": "train"}],
        "sequence_len": 2048, "micro_batch_size": 2, "gradient_accumulation_steps": 8, "num_epochs": 2,
        "learning_rate": 2e-4, "optimizer": "adamw_torch", "lr_scheduler": "cosine", "bf16": "auto",
        "output_dir": f"./outputs/kforge-{mode}",
    }
    yaml_path = out.with_suffix(".axolotl.yaml")
    yaml_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return {"path": str(out), "config": str(yaml_path), "train_path": str(train_path), "test_path": str(test_path),
            "rows": rows.height, "train": int((rows["split"] == "train").sum()),
            "test": int((rows["split"] == "test").sum())}


def _read_jsonl(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            problems.append(f"{path.name} line {i}: not JSON")
    return rows


def _config_problems(path: Path) -> list[str]:
    """The axolotl config beside ``path`` must train and evaluate on different, disjoint files."""
    cfg_path = path.with_suffix(".axolotl.yaml")
    if not cfg_path.exists():
        return []
    cfg = yaml.safe_load(cfg_path.read_text()) or {}
    train = [Path(d["path"]) for d in cfg.get("datasets") or []]
    test = [Path(d["path"]) for d in cfg.get("test_datasets") or []]
    if not train or not test:
        return [f"{cfg_path.name}: needs both datasets and test_datasets"]
    if set(train) & set(test):
        return [f"{cfg_path.name}: datasets and test_datasets name the same file"]
    problems: list[str] = []
    ids: dict[str, set[str]] = {"train": set(), "test": set()}
    pids: dict[str, set[str]] = {"train": set(), "test": set()}
    for side, paths in (("train", train), ("test", test)):
        for p in paths:
            if not p.exists():
                problems.append(f"{cfg_path.name}: {side} file {p} is missing")
                continue
            for r in _read_jsonl(p, problems):
                ids[side].add(str(r.get("id")))
                pids[side].add(str(r.get("patch_id")))
    if ids["train"] & ids["test"]:
        problems.append(f"{len(ids['train'] & ids['test'])} rows in both the training and the test file")
    if pids["train"] & pids["test"]:
        problems.append(f"{len(pids['train'] & pids['test'])} patch ids in both the training and the test file")
    return problems


def validate_export(path: str | Path) -> list[str]:
    """Problems with an export file: schema, empty fields, duplicates, split leakage."""
    path = Path(path)
    problems: list[str] = []
    rows = _read_jsonl(path, problems)
    if not rows:
        return problems + ["no rows"]
    problems += _config_problems(path)
    for i, r in enumerate(rows, start=1):
        missing = [k for k in REQUIRED_KEYS if k not in r]
        if missing:
            problems.append(f"row {i}: missing {missing}")
        elif not str(r["input"]).strip() or not str(r["output"]).strip():
            problems.append(f"row {i}: empty input or output")
        if r.get("llm_score") is not None and r["llm_score"] not in (1, 2, 3, 4, 5):
            problems.append(f"row {i}: llm_score {r['llm_score']!r} is not within 1..5")
    df = pl.DataFrame([{k: r.get(k) for k in ("id", "patch_id", "split", "date")} for r in rows])
    if df["id"].n_unique() != df.height:
        problems.append(f"{df.height - df['id'].n_unique()} duplicate ids")
    if df["patch_id"].n_unique() != df.height:
        problems.append(f"{df.height - df['patch_id'].n_unique()} duplicate patch ids (near-duplicates/backports)")
    train, test = df.filter(pl.col("split") == "train"), df.filter(pl.col("split") == "test")
    if train.height and test.height:
        leaked = set(train["patch_id"]) & set(test["patch_id"])
        if leaked:
            problems.append(f"{len(leaked)} patch ids in both train and test")
        if train["date"].max() > test["date"].min():  # type: ignore[operator]
            problems.append("split is not by time: a train row is newer than a test row")
    return problems
