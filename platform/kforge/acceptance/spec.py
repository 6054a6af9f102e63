"""The two acceptance targets share one machinery; a TargetSpec says what differs."""

from dataclasses import dataclass

from kforge.features.build import NUMERIC_FEATURES


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

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, self.text]


COMMIT = TargetSpec("commit", "kforge-acceptance-commit", "sha", "p_defect", tuple(NUMERIC_FEATURES),
                    ("subsystem",), "text", "la", "subsystem")


def email_spec() -> TargetSpec:
    from kforge.acceptance.email_features import EMAIL_NUMERIC

    return TargetSpec("email", "kforge-acceptance-email", "email_id", "p_merged", tuple(EMAIL_NUMERIC),
                      ("area",), "text", "la", "area")


def spec_for(target: str) -> TargetSpec:
    if target == "commit":
        return COMMIT
    if target == "email":
        return email_spec()
    from kforge.errors import InputError

    raise InputError(f"unknown acceptance target {target!r}: use commit or email")
