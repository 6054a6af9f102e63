"""The unseen-mixin scorer: transferable inputs only, shrink chosen on held-out mixins, and the
rule score itself when validation finds nothing better."""

import numpy as np
import polars as pl
import pytest
from kforge.mixins.baselines import rule_score
from kforge.mixins.dataset import feature_columns, feature_frame
from kforge.mixins.transfer import TransferScorer, choose_shrink, transfer_columns


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


def test_fallback_serves_the_rule_score_bit_for_bit(frame):
    # a held-out mixin served by the fallback ties the rules exactly (the generalizes gate's tie)
    ts = TransferScorer.fit(frame, feature_columns(frame), seed=0)
    ts.shrink = 0.0
    assert ts.served_by == "rules"
    assert np.array_equal(ts.predict_proba(frame), rule_score(frame))


@pytest.mark.parametrize(("gains", "want"), [
    # a clear, consistent gain: served (the larger shrink has the better bound)
    ({0.0: [0.0] * 12, 0.5: [0.02, 0.03, 0.01, 0.02] * 3, 1.0: [0.04, -0.01, 0.0, 0.05] * 3}, 0.5),
    # a positive mean carried by two mixins, losses elsewhere: not clear, so the rules serve
    ({0.0: [0.0] * 12, 0.5: [0.10, 0.08] + [-0.01] * 10}, 0.0),
    # nothing gains
    ({0.0: [0.0] * 12, 0.5: [-0.01] * 12}, 0.0),
])
def test_shrink_needs_a_positive_lower_bound_on_held_out_mixins(gains, want):
    shrink, means, bounds = choose_shrink({k: np.array(v) for k, v in gains.items()}, select="bound")
    assert shrink == want
    assert set(means) == set(bounds) == {f"{k:g}" for k in gains}
    assert all(bounds[k] <= means[k] for k in means)
    # the session-6 rule (best mean) would serve the learner on the second case: the bound is stricter
    mean_pick, _, _ = choose_shrink({k: np.array(v) for k, v in gains.items()}, select="mean")
    assert mean_pick >= shrink


def test_the_default_choice_is_the_lower_bound():
    from kforge.mixins import transfer

    assert transfer.SELECT == "bound" and transfer.BOUND_Z > 1
    noisy = {0.0: np.zeros(12), 0.25: np.array([0.10, 0.08] + [-0.01] * 10)}
    assert choose_shrink(noisy)[0] == 0.0
