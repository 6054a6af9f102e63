"""The unseen-mixin scorer: transferable inputs only, shrink chosen on held-out mixins, and the
rule score itself when validation finds nothing better."""

import numpy as np
import polars as pl
import pytest
from kforge.mixins.baselines import rule_score
from kforge.mixins.dataset import feature_columns, feature_frame
from kforge.mixins.transfer import TransferScorer, transfer_columns


@pytest.fixture(scope="module")
def frame(outcomes, catalogue) -> pl.DataFrame:  # noqa: ANN001
    return feature_frame(outcomes, catalogue)


def test_inputs_never_name_a_mixin_or_its_history(frame):
    cols = transfer_columns(feature_columns(frame))
    assert "rule_score" in cols and "hook_conflict" in cols
    assert not [c for c in cols if c.startswith(("has_", "h_", "hb_"))]


def test_falls_back_to_the_rule_score_when_labels_carry_no_structure(frame):
    rng = np.random.default_rng(0)
    noise = frame.with_columns(passed=pl.Series(rng.random(frame.height) < 0.8))
    ts = TransferScorer.fit(noise, feature_columns(noise), seed=0)
    assert ts.validation_mixins >= 10 and set(ts.validation) == {"0", "0.1", "0.25", "0.5", "1"}
    if ts.served_by == "rules":
        assert ts.shrink == 0.0
        assert np.allclose(ts.predict_proba(frame), np.clip(rule_score(frame), 1e-4, 1 - 1e-4))
    else:   # chosen only when its validation gain over the rules is positive
        assert ts.validation[f"{ts.shrink:g}"] > 0


def test_learns_a_structure_the_rules_miss_on_held_out_mixins(frame):
    # outcomes that depend on a trait the rules ignore (any mixin catching broad exceptions fails
    # on REDUCER); validation on held-out mixins must pick a positive shrink and rank it right
    broad = (frame["any_catches_broad"] > 0) & (frame["node_type"] == "REDUCER")
    rng = np.random.default_rng(1)
    y = np.where(broad.to_numpy(), rng.random(frame.height) < 0.2, rng.random(frame.height) < 0.9)
    synth = frame.with_columns(passed=pl.Series(y))
    ts = TransferScorer.fit(synth, feature_columns(synth), seed=0)
    assert ts.served_by == "transfer" and ts.shrink > 0
    p = ts.predict_proba(synth)
    assert p[broad.to_numpy()].mean() < p[~broad.to_numpy()].mean()
