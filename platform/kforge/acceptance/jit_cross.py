"""The JIT anchors cross-project: train on five projects, test on the sixth (issue 16).

``jit_anchors/{project}_k_feature.csv`` (Zeng et al., ISSTA 2021) holds the 14 Kamei change
metrics and the label ``bug`` of every commit of six projects. Each project is split as the
literature splits it: the first 80% of its commits by date train, the last 20% test. For each
project, the acceptance commit model kind (the ensemble the ``generalizes`` gate fits, with the
multi-repository cold-start blend) is fit on the *other* projects' training rows and scores the
project's test rows; lines-added (LApredict) is fit on the same rows and scores the same rows.
The machinery is the ``generalizes`` gate's own
(:func:`kforge.acceptance.generalize.leave_one_group_out` and
:func:`kforge.registry.gates.generalizes_check`): the model must beat lines-added on every project.

The test rows are those of the within-project protocol (``evaluate jit``), so the published
within-project LApredict figures are on the same rows. Neither ``../shared/data/README.md`` nor
the notes cite a published *cross-project* LApredict figure; the baseline is lines-added fit here.

Example::

    g = jit_cross_project(Path("../shared/data"), n_estimators=100)
    g.check.passed, g.table
"""

from dataclasses import replace
from pathlib import Path

import polars as pl

from kforge.acceptance.generalize import Generalization, leave_one_group_out
from kforge.acceptance.model import COLD_START_WEIGHT
from kforge.acceptance.spec import COMMIT, COMMIT_MODEL, TargetSpec
from kforge.errors import InputError
from kforge.features.jit import JIT_COLUMNS

ANCHORS = "jit_anchors"
SUFFIX = "_k_feature.csv"
TEST_FRACTION = 0.2

# the commit model kind on the 14 Kamei metrics; the group is a project, not a repository
JIT_CROSS = replace(COMMIT, numeric=tuple(JIT_COLUMNS), categorical=(), text="", lines_added="la", group="repo",
                    model=replace(COMMIT_MODEL, generalizes_over="project"))


def jit_projects(data: Path) -> list[str]:
    """The projects with a ``jit_anchors/<project>_k_feature.csv`` under ``data``."""
    folder = data / ANCHORS
    names = sorted(p.name.removesuffix(SUFFIX) for p in folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    if not names:
        raise InputError(f"no JIT anchors at {folder}: pass --data DIR holding jit_anchors/<project>{SUFFIX}")
    return names


def read_jit_anchor(data: Path, project: str) -> pl.DataFrame:
    """One project's commits, oldest first: ``repo`` (the project), ``t`` (unix date), ``y`` (``bug``)
    and the 14 metrics as floats. The files' ``__`` column is a copy of the label and is dropped."""
    path = data / ANCHORS / f"{project}{SUFFIX}"
    if not path.is_file():
        raise InputError(f"JIT anchor file not found: {path}")
    df = pl.read_csv(path).rename({"entrophy": "entropy"}, strict=False)
    missing = [c for c in ("date", "bug", *JIT_COLUMNS) if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks the columns {', '.join(missing)}")
    return df.select(pl.lit(project).alias("repo"), pl.col("date").cast(pl.Int64).alias("t"),
                     (pl.col("bug").cast(pl.Int64) > 0).alias("y"),
                     *[pl.col(c).cast(pl.Float64) for c in JIT_COLUMNS]).sort("t", maintain_order=True)


def time_cut(df: pl.DataFrame, test_fraction: float = TEST_FRACTION) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The literature's split of one project: the first ``1 - test_fraction`` of its rows by date
    train, the rest test."""
    cut = int(df.height * (1 - test_fraction))
    return df[:cut], df[cut:]


def jit_cross_frames(data: Path, test_fraction: float = TEST_FRACTION) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every project's training rows and test rows, each set in one frame (training rows by time)."""
    parts = [time_cut(read_jit_anchor(data, p), test_fraction) for p in jit_projects(data)]
    train = pl.concat([tr for tr, _ in parts]).sort("t", maintain_order=True)
    return train, pl.concat([te for _, te in parts])


def jit_cross_project(data: Path, *, n_estimators: int = 100, n_folds: int = 2, prior_k: float = 500.0,
                      min_class: int = 10, test_fraction: float = TEST_FRACTION,
                      spec: TargetSpec = JIT_CROSS, group_balanced: bool = True,
                      cold_start_weight: float | None = COLD_START_WEIGHT) -> Generalization:
    """Leave one JIT project out: per-project model and lines-added AUCs on the project's test rows
    from fits on the other projects' training rows, and the ``generalizes`` check over projects."""
    train, test = jit_cross_frames(data, test_fraction)
    return leave_one_group_out(train, test, spec, list(spec.numeric), n_estimators=n_estimators, n_folds=n_folds,
                               use_text=False, min_class=min_class, prior_k=prior_k,
                               group_balanced=group_balanced, cold_start_weight=cold_start_weight)
