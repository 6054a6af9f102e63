"""The generation corpus: one row per commit with its diff, message and targets, split by time.

Each repository is split by time on its own (:func:`split_labels`): its latest ``test_frac`` of
commits are test rows, the ``val_frac`` before them validation rows, so a small repository gets
its share of held-out rows instead of the few that one global cut would leave it; a repository
with fewer than :data:`MIN_REPO_ROWS` cleaned commits only trains. No repository's held-out rows
precede its own training rows (:func:`check_time_split`).

Sources (:func:`load_sources`): every repository the platform knows. The warehouse's
``commit_diffs`` (the ingested clones' diffs and the data directory's ``kernel/*.diffs.parquet``),
any further ``*.diffs.parquet`` files (``CorpusConfig.diff_files``: the diffs that came with a
commits table loaded by ``kforge import-commits``), each joined to ``commits`` for the author (to
drop bots) and its ``origin``: ``clone`` (a registered repository), ``import`` (a commit loaded by
``kforge import-commits``/``imported_commits``), ``file`` (a diff with no commit row), and
``feedback``. Imported commits with no diff anywhere cannot become rows; they are counted
(``CorpusReport.imported_without_diff``). Cleaning
happens *before* splitting: bot commits and near-identical messages (same text once numbers,
hex ids and whitespace are normalised; first occurrence kept) are dropped, and how many is
reported. Reviewer feedback (accepted/edited messages for a diff) joins the training split only.
"""

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from kforge.errors import InputError
from kforge.generation import labels
from kforge.storage import Warehouse

BOT = re.compile(r"(\[bot\]|\bbot@|-bot\b|dependabot|renovate|github-actions|noreply@github|patchwork-bot|\bautomation\b)", re.I)
REQUIRED = ("repo", "sha", "author_date", "subject", "body", "diff")
ORIGINS = ("clone", "import", "file", "feedback")
SPLITS = ("train", "val", "test")
MIN_REPO_ROWS = 10   # fewer cleaned commits than this: the repository trains only


@dataclass(frozen=True)
class CorpusReport:
    rows_in: int
    bots: int
    near_duplicates: int
    empty: int
    train: int
    val: int
    test: int
    feedback_rows: int
    train_end: str
    test_start: str
    repos: dict[str, dict[str, int]] | None = None   # per repository: train/val/test commit rows
    origins: dict[str, int] | None = None            # rows per origin (ORIGINS), after cleaning
    imported_without_diff: int = 0                   # imported commits no source had a diff for
    feedback_held_out_diffs: int = 0                 # feedback rows dropped: their diff is a val/test commit's

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _norm_message(subject: str, body: str) -> str:
    text = f"{subject}\n{labels.strip_trailers(body)[:300]}".lower()
    text = re.sub(r"\b[0-9a-f]{7,40}\b", "H", text)
    text = re.sub(r"\d+", "0", text)
    return re.sub(r"\s+", " ", text).strip()


def _check_columns(df: pl.DataFrame, where: str) -> None:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{where} lacks column(s) {', '.join(missing)}; expected the commit_diffs schema "
                         f"({', '.join(REQUIRED)}, parent, ...)")


def load_from_warehouse(wh: Warehouse) -> pl.DataFrame:
    """The warehouse's rows of every source (:func:`load_sources` without extra files)."""
    return load_sources(wh).raw


def load_from_parquet(files: list[Path]) -> pl.DataFrame:
    frames = []
    for f in files:
        if not Path(f).exists():
            raise InputError(f"{f}: no such file")
        try:
            df = pl.read_parquet(f)
        except Exception as exc:
            raise InputError(f"{f} is not a readable parquet file: {exc}") from None
        _check_columns(df, str(f))
        commits = Path(str(f).replace(".diffs.parquet", ".commits.parquet"))
        if commits != Path(f) and commits.exists() and "author_email" not in df.columns:
            authors = pl.read_parquet(commits, columns=["sha", "author_email", "author_name"])
            df = df.join(authors, on="sha", how="left")
        frames.append(df)
    if not frames:
        raise InputError("no diff files given")
    return pl.concat(frames, how="diagonal_relaxed")


@dataclass(frozen=True)
class Sources:
    """The raw rows of every source, with their ``origin``, and what could not become a row."""

    raw: pl.DataFrame
    imported_without_diff: int


def load_sources(wh: Warehouse, diff_files: Sequence[Path] = ()) -> Sources:
    """``commit_diffs`` plus ``diff_files`` (a (repo, sha) in both: the warehouse's row), each row with
    its author and ``origin`` from ``commits`` and the registered repositories (see the module doc)."""
    from kforge.git.importer import imported_diffs
    from kforge.git.ingest import registered_repositories

    frames = []
    if wh.has_table("commit_diffs"):
        frames.append(wh.read_table("commit_diffs"))
        _check_columns(frames[0], "commit_diffs")
    stored_imports = imported_diffs(wh)   # stored by `kforge import-commits --diffs` (also in commit_diffs once rebuilt)
    if stored_imports.height:
        frames.append(stored_imports)
    if diff_files:
        frames.append(load_from_parquet(list(diff_files)))
    if not frames:
        raise InputError("the warehouse has no commit_diffs table and no diff files were given: materialize "
                         "kernel_commits/commit_diffs (after `kforge ingest` or `kforge import-commits`) first, "
                         "or pass the *.diffs.parquet files")
    raw = pl.concat(frames, how="diagonal_relaxed").unique(subset=["repo", "sha"], keep="first", maintain_order=True)
    for c in ("author_email", "author_name"):
        if c not in raw.columns:
            raw = raw.with_columns(pl.lit(None, pl.String).alias(c))
    cols = {"repo": pl.String, "sha": pl.String, "author_email": pl.String, "author_name": pl.String,
            "source": pl.String}
    commits = pl.DataFrame(schema=cols)
    if wh.has_table("commits"):
        have = set(wh.read("select * from commits limit 0").columns)
        commits = wh.read("select " + ", ".join(c if c in have else f"null as {c}" for c in cols) + " from commits")
        commits = commits.cast(cols)  # type: ignore[arg-type]
    raw = raw.join(commits.rename({"author_email": "_email", "author_name": "_name", "source": "_source"}),
                   on=["repo", "sha"], how="left")
    clones = set(registered_repositories(wh))
    origin = (pl.when(pl.col("repo").is_in(list(clones))).then(pl.lit("clone"))
              .when(pl.col("_source").str.starts_with("import:")).then(pl.lit("import"))
              .otherwise(pl.lit("file")))
    raw = raw.with_columns(pl.coalesce("author_email", "_email").alias("author_email"),
                           pl.coalesce("author_name", "_name").alias("author_name"),
                           origin.alias("origin")).drop("_email", "_name", "_source")
    imported = commits.filter(pl.col("source").str.starts_with("import:"))
    missing = imported.join(raw.select("repo", "sha"), on=["repo", "sha"], how="anti").height
    return Sources(raw, missing)


def feedback_examples(wh: Warehouse) -> pl.DataFrame:
    """Accepted/edited generated messages with their diff, as extra training rows."""
    if not wh.has_table("feedback_generation"):
        return pl.DataFrame()
    fb = wh.read("select * from feedback_generation where verdict in ('accept', 'edit') and diff is not null "
                 "and length(diff) > 0")
    if fb.height == 0:
        return fb
    msg = pl.when(pl.col("verdict") == "edit").then(pl.col("final_message")).otherwise(pl.col("generated_message"))
    fb = fb.with_columns(msg.alias("message")).filter(pl.col("message").is_not_null())
    parts = fb["message"].str.split_exact("\n\n", 1)
    return pl.DataFrame({
        "repo": "feedback", "sha": ("fb" + fb["feedback_id"].cast(pl.String)),
        "parent": None, "author_date": fb["received_at"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "subject": parts.struct.field("field_0").str.strip_chars(),
        "body": parts.struct.field("field_1").fill_null("").str.strip_chars(),
        "diff": fb["diff"], "author_email": fb["reviewer"].fill_null(""), "author_name": "",
    })


@dataclass(frozen=True)
class CorpusConfig:
    """How the corpus is cut: shares of commits for validation and test (by time), and a size cap."""

    val_frac: float = 0.1
    test_frac: float = 0.1
    max_rows: int = 0
    diff_files: tuple[str, ...] = ()   # *.diffs.parquet beyond commit_diffs (those of imported commit tables)

    @classmethod
    def from_flat(cls, *, val_frac: float = 0.1, test_frac: float = 0.1, max_rows: int = 0,
                  diff_files: Sequence[str] = ()) -> "CorpusConfig":
        """The one mapping from flat settings (the asset's ``Config``, the CLI's options) to this config."""
        return cls(val_frac=val_frac, test_frac=test_frac, max_rows=max_rows, diff_files=tuple(diff_files))


def corpus_for(wh: Warehouse, cfg: CorpusConfig, raw: pl.DataFrame | None = None) -> tuple[pl.DataFrame, CorpusReport]:
    """The corpus from ``raw`` (default: every source, :func:`load_sources`) plus reviewer feedback, cut by
    ``cfg``: the one entry the ``generation_corpus`` asset and ``kforge train generation`` share."""
    missing = 0
    if raw is None:
        src = load_sources(wh, [Path(f) for f in cfg.diff_files])
        raw, missing = src.raw, src.imported_without_diff
    corpus, rep = build_corpus(raw, val_frac=cfg.val_frac, test_frac=cfg.test_frac, feedback=feedback_examples(wh),
                               max_rows=cfg.max_rows)
    return corpus, replace(rep, imported_without_diff=missing)


def build_corpus(raw: pl.DataFrame, *, val_frac: float = 0.1, test_frac: float = 0.1,
                 feedback: pl.DataFrame | None = None, max_rows: int = 0) -> tuple[pl.DataFrame, CorpusReport]:
    """Clean, label and split by time. ``max_rows`` keeps the most recent rows (0 = all)."""
    if not (0 < test_frac < 0.5 and 0 <= val_frac < 0.5):
        raise InputError(f"bad split fractions val={val_frac} test={test_frac}: need 0<=val<0.5, 0<test<0.5")
    if max_rows < 0:   # a negative count would keep all rows but the first |max_rows|
        raise InputError(f"max_rows must be 0 (all rows) or more, got {max_rows}")
    _check_columns(raw, "corpus")
    n_in = raw.height
    df = raw.with_columns(
        pl.col("author_date").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False).dt.convert_time_zone("UTC").alias("ts"),
        pl.col("subject").fill_null(""), pl.col("body").fill_null(""), pl.col("diff").fill_null(""),
    )
    for c in ("author_email", "author_name", "parent"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c))
    if "origin" not in df.columns:
        df = df.with_columns(pl.lit("file").alias("origin"))
    empty_mask = (df["subject"].str.strip_chars() == "") | (df["diff"].str.strip_chars() == "") | df["ts"].is_null()
    n_empty = int(empty_mask.sum())
    df = df.filter(~empty_mask)
    who = df["author_email"].fill_null("") + " " + df["author_name"].fill_null("")
    bot_mask = who.str.contains(BOT.pattern) | df["subject"].str.contains(r"(?i)^(automated|auto-generated|\[bot\])")
    n_bots = int(bot_mask.sum())
    df = df.filter(~bot_mask).sort("ts", "sha")
    df = df.with_columns(pl.Series("norm", [_norm_message(s, b) for s, b in zip(df["subject"], df["body"], strict=True)]))
    before = df.height
    df = df.unique(subset=["norm"], keep="first", maintain_order=True)
    n_dup = before - df.height
    if max_rows and df.height > max_rows:
        df = df.tail(max_rows)
    if df.height < 20:
        raise InputError(f"only {df.height} usable commits after cleaning (need >= 20 to split by time)")
    df = _label(df)
    split = split_labels(df["repo"].to_list(), val_frac, test_frac)
    df = df.with_columns(pl.Series("split", split), pl.lit("commit").alias("source"))
    per_repo = {r: {s: 0 for s in SPLITS} for r in sorted(set(df["repo"].to_list()))}
    for r, s in zip(df["repo"], split, strict=True):
        per_repo[r][s] += 1
    n_fb = n_fb_held = 0
    if feedback is not None and feedback.height:
        fb = _label(feedback.with_columns(
            pl.col("author_date").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False).dt.convert_time_zone("UTC").alias("ts"),
            pl.lit("").alias("norm")))
        fb = fb.with_columns(pl.lit("train").alias("split"), pl.lit("feedback").alias("source"),
                             pl.lit("feedback").alias("origin"))
        # feedback trains only; a reviewer's message for a held-out commit's diff would put that diff (and nearly
        # its subject) into training, so such rows are dropped
        held = df.filter(pl.col("split") != "train")["diff"].str.strip_chars().implode()
        leak = fb["diff"].fill_null("").str.strip_chars().is_in(held)
        n_fb_held = int(leak.sum())
        fb = fb.filter(~leak)
        n_fb = fb.height
        df = pl.concat([df, fb], how="diagonal_relaxed")   # a source's extra columns (diff_bytes_full, ...) stay null
    out = df.select("repo", "sha", "parent", "ts", "subject", "body", "diff", "prefix", "change_type", "complexity",
                    "family", "issue", "split", "source", "origin")
    train = out.filter((pl.col("split") == "train") & (pl.col("source") == "commit"))
    test = out.filter(pl.col("split") == "test")
    rep = CorpusReport(n_in, n_bots, n_dup, n_empty, int((out["split"] == "train").sum()),
                       int((out["split"] == "val").sum()), test.height, n_fb,
                       str(train["ts"].max()), str(test["ts"].min()), per_repo,
                       {o: int((out["origin"] == o).sum()) for o in ORIGINS}, feedback_held_out_diffs=n_fb_held)
    return out, rep


def split_labels(repos: Sequence[str], val_frac: float, test_frac: float) -> list[str]:
    """``train``/``val``/``test`` for rows in time order, each repository cut by time on its own: its latest
    ``max(1, int(n * test_frac))`` rows test, the ``int(n * val_frac)`` before them val, the rest train
    (all train below :data:`MIN_REPO_ROWS` rows)."""
    rows: dict[str, list[int]] = {}
    for i, r in enumerate(repos):
        rows.setdefault(r, []).append(i)
    out = ["train"] * len(repos)
    for pos in rows.values():
        n = len(pos)
        if n < MIN_REPO_ROWS:
            continue
        n_test, n_val = max(1, int(n * test_frac)), int(n * val_frac)
        for i in pos[n - n_test:]:
            out[i] = "test"
        for i in pos[n - n_test - n_val:n - n_test]:
            out[i] = "val"
    return out


def _label(df: pl.DataFrame) -> pl.DataFrame:
    prefixes = [labels.subject_prefix(s) for s in df["subject"]]
    types = [labels.change_type(s, b) for s, b in zip(df["subject"], df["body"], strict=True)]
    sizes = [labels.complexity(*labels.diff_lines(d)) for d in df["diff"]]
    return df.with_columns(
        pl.Series("prefix", prefixes, dtype=pl.String), pl.Series("change_type", types, dtype=pl.String),
        pl.Series("complexity", sizes, dtype=pl.String),
        pl.Series("family", [labels.family(p) for p in prefixes], dtype=pl.String),
        pl.Series("issue", [labels.strip_trailers(b) for b in df["body"]], dtype=pl.String),
    )


def split_frames(corpus: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {s: corpus.filter(pl.col("split") == s) for s in SPLITS}


def held_out_rows(test: pl.DataFrame, n: int) -> pl.DataFrame:
    """The earliest ``n`` rows of ``test`` shared evenly among its repositories (one with fewer rows leaves
    its spare share to the others), in corpus order: the rows decoded for the LM's metrics."""
    counts = sorted(Counter(test["repo"].to_list()).items(), key=lambda rc: (rc[1], rc[0]))
    take, left = {}, n
    for k, (repo, count) in enumerate(counts):
        take[repo] = min(count, left // (len(counts) - k))
        left -= take[repo]
    rank = test.select(pl.int_range(pl.len()).over("repo").alias("r"))["r"]
    keep = [r < take[repo] for repo, r in zip(test["repo"], rank, strict=True)]
    return test.filter(pl.Series(keep, dtype=pl.Boolean))


def check_time_split(corpus: pl.DataFrame) -> tuple[bool, str]:
    """In every repository, every commit row in val/test is no earlier than every commit row in train; reviewer
    feedback rows train only, and none shares its diff with a val/test row."""
    c = corpus.filter(pl.col("source") == "commit")
    tr, te = c.filter(pl.col("split") == "train"), c.filter(pl.col("split").is_in(["val", "test"]))
    if tr.height == 0 or te.height == 0:
        return False, "empty train or held-out split"
    ends = dict(tr.group_by("repo").agg(pl.col("ts").max()).iter_rows())
    starts = dict(te.group_by("repo").agg(pl.col("ts").min()).iter_rows())
    bad = sorted(r for r, t in starts.items() if r in ends and ends[r] > t)
    fb = corpus.filter(pl.col("source") == "feedback")
    if fb.height:
        held = te["diff"].str.strip_chars().implode()
        shared = int(fb["diff"].fill_null("").str.strip_chars().is_in(held).sum())
        if shared or (fb["split"] != "train").any():
            return False, f"{shared} feedback row(s) share a diff with held-out rows, or feedback is held out"
    if bad:
        return False, "held-out rows before training rows in " + ", ".join(f"{r} (train ends {ends[r]}, held-out starts {starts[r]})" for r in bad)
    return True, f"split by time within each of {len(starts)} repositories: " + "; ".join(
        f"{r} train ends {ends.get(r)}, held-out starts {starts[r]}" for r in sorted(starts)) + (
        f"; {fb.height} reviewer feedback rows train only, none with a held-out diff" if fb.height else "")
