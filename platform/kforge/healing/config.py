"""The healing family's training config and the result of one training call (plain dataclasses:
the Dagster assets and ``kforge healing train`` map their own options into :class:`HealingConfig`)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from kforge.healing.specs import SALT, TEST_SHARE
from kforge.registry.release import ReleaseResult

if TYPE_CHECKING:
    from kforge.healing.generalize import Generalization

MODELS = ("classifier", "bandit", "effectiveness")


@dataclass
class HealingConfig:
    """What to train and how. ``data_dir``: real data (``<dir>/healing``) instead of the corpus;
    ``test_share``/``salt``: which groups are held out (by a hash of the group key)."""

    data_dir: Path | None = None
    models: tuple[str, ...] = MODELS
    test_share: float = TEST_SHARE
    salt: str = SALT
    seed: int = 0
    members: tuple[str, ...] = ("linear", "gbm")
    text_encoder: bool = False   # add the pretrained encoder's members (model.ENCODER_MEMBERS) to notebook models
    prior_weight: float = 2.0
    replay_steps: int = 2000


@dataclass
class HealingRelease:
    """One release result per trained model, their metrics, and the stored strategy scores."""

    classifier: ReleaseResult | None = None
    bandit: ReleaseResult | None = None
    effectiveness: ReleaseResult | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)   # model key -> metrics
    strategy_scores: pl.DataFrame | None = None
    generalization: "Generalization | None" = None   # the classifier's leave-one-source-out (``generalizes``)
