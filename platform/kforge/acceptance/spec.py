"""The two acceptance targets share one machinery; a TargetSpec says what differs, and each
target's :class:`~kforge.registry.gates.ModelSpec` declares its registered model and gates."""

from dataclasses import dataclass

from kforge.features.build import NUMERIC_FEATURES
from kforge.registry.gates import (
    GENERALIZES,
    NO_FUTURE_FEATURES,
    SPLIT_HOLDS,
    TEST_SIZE,
    ModelSpec,
    beats,
)

FAMILY = "acceptance"
METRIC = "test_roc_auc"
BASELINES = ("lines_added", "plain_lr")
MIN_TEST_ROWS = 150
MIN_TEST_CLASS = 15


GENERALIZES_DESCRIPTION = (
    f"leave one repository out: a model trained on the other repositories' training rows has {METRIC} > "
    "lines_added's on every held-out repository's test-window rows (per-repository AUCs, mean and worst "
    "repository in the metadata); not run when the data holds one repository")


def _model_spec(name: str, asset_key: str, unit: str, event: str, generalizes: bool = False) -> ModelSpec:
    return ModelSpec(
        name=name, family=FAMILY, asset_key=asset_key, metric=METRIC, higher_is_better=True, baselines=BASELINES,
        split="time", split_unit=unit, min_test_rows=MIN_TEST_ROWS, point_in_time=True,
        generalizes_over="repository" if generalizes else "", generalizes_baseline="lines_added" if generalizes else "",
        descriptions={
            GENERALIZES: GENERALIZES_DESCRIPTION,
            SPLIT_HOLDS: f"time split: every training {unit[:-1]} is older than the cutoff and every held-out one "
                         f"at or after it; training labels ({event}) are as known at the cutoff",
            NO_FUTURE_FEATURES: "no label column among the features, no single feature with held-out ROC AUC "
                                "> 0.97, and the point-in-time check (when it ran) passed",
            TEST_SIZE: f"at least {MIN_TEST_ROWS} held-out {unit} and {MIN_TEST_CLASS} of each class "
                       "(defaults; min_test_rows / min_test_class in the config)",
            beats("lines_added"): f"{METRIC} > the lines_added baseline's (LApredict: logistic regression on "
                                  "log lines added) on the same held-out rows",
            beats("plain_lr"): f"{METRIC} > plain logistic regression's on the same numeric features, "
                               "on the same held-out rows",
        })


COMMIT_MODEL = _model_spec("kforge-acceptance-commit", "acceptance_commit_model", "commits", "later fixed or reverted",
                           generalizes=True)
EMAIL_MODEL = _model_spec("kforge-acceptance-email", "acceptance_email_model", "e-mails", "merged")


@dataclass(frozen=True)
class TargetSpec:
    target: str                 # commit | email
    model_name: str             # registered model name
    id_col: str                 # sha | email_id
    score_col: str              # p_defect | p_merged
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    text: str
    lines_added: str            # the LApredict baseline's column
    group: str                  # per-group metrics
    model: ModelSpec = COMMIT_MODEL  # what the release path registers and gates

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, self.text]


COMMIT = TargetSpec("commit", COMMIT_MODEL.name, "sha", "p_defect", tuple(NUMERIC_FEATURES),
                    ("subsystem",), "text", "la", "subsystem", COMMIT_MODEL)


def email_spec() -> TargetSpec:
    from kforge.acceptance.email_features import EMAIL_NUMERIC

    return TargetSpec("email", EMAIL_MODEL.name, "email_id", "p_merged", tuple(EMAIL_NUMERIC),
                      ("area",), "text", "la", "area", EMAIL_MODEL)


def spec_for(target: str) -> TargetSpec:
    if target == "commit":
        return COMMIT
    if target == "email":
        return email_spec()
    from kforge.errors import InputError

    raise InputError(f"unknown acceptance target {target!r}: use commit or email")
