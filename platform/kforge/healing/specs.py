"""The three registered healing models, declared once for the release path and the asset checks.

* ``kforge-healing``: the error/crash classifier bundle (rules + calibrated ensembles);
* ``kforge-healing-bandit``: the Thompson-sampling strategy posteriors (JSON counts);
* ``kforge-healing-effectiveness``: P(fix works | error class, strategy, exception type).

All three hold out the same groups (program, crash title or notebook; feedback rows are their own
group) by :func:`kforge.registry.heldout.in_test` with :data:`TEST_SHARE` and :data:`SALT`: a pure
function of the group key, so new feedback never moves a training group into test. The classifier
is also trained without one source at a time (the ``generalizes`` gate, :mod:`kforge.healing.generalize`).
"""

from kforge.registry.gates import (
    GENERALIZES,
    SPLIT_HOLDS,
    TEST_SIZE,
    Check,
    GateSpec,
    ModelSpec,
    beats,
    beats_check,
)

FAMILY = "healing"
TEST_SHARE = 0.3
SALT = "kforge"
PRIMARY = {"kernel": "crash_class", "python": "label_root_cause"}
MIN_TEST_ROWS = 10
MIN_TEST_ERRORS = 8
MIN_TEST_OUTCOMES = 20
MIN_SOURCE_ROWS = 20   # a held-out source is judged with this many labelled rows (and as many from the others)
CONSTANT = "constant"

CLASSIFIER = ModelSpec(
    name="kforge-healing", family=FAMILY, asset_key="healing_model", metric="test_primary_accuracy",
    baselines=("tfidf_lr",), split="group", split_unit="groups (program, crash title, notebook)",
    min_test_rows=MIN_TEST_ROWS, point_in_time=False, generalizes_over="source", generalizes_baseline="tfidf_lr",
    descriptions={
        SPLIT_HOLDS: "group split by a hash of the group key (program, crash title, notebook): no held-out "
                     "group has a training row",
        TEST_SIZE: f"at least {MIN_TEST_ROWS} held-out rows labelled with the primary label",
        beats("tfidf_lr"): "held-out accuracy of the primary label (kernel crash_class when kernel data is present, "
                           "else Python label_root_cause; unknown counts as wrong) > the TF-IDF + logistic regression "
                           "baseline's on the same rows",
        GENERALIZES: "leave one source out (JunoBench notebook platform nb_source, kernel os): trained on the other "
                     "sources' rows, primary-label accuracy > TF-IDF + logistic regression's (trained on the same "
                     f"rows) on every held-out source with at least {MIN_SOURCE_ROWS} rows; per-source numbers and the "
                     "worst source in the metadata; not run, and not blocking, with fewer than two such sources (the "
                     "embedded corpus, a Linux-only kernel file)",
    })

BEATS_STATIC_RULE = beats("static_rule")
BANDIT = ModelSpec(
    name="kforge-healing-bandit", family=FAMILY, asset_key="healing_strategies", metric="heldout_success_rate",
    baselines=("random",), split="group", split_unit="programs", min_test_rows=MIN_TEST_ERRORS,
    point_in_time=False,
    extra_gates=(GateSpec(BEATS_STATIC_RULE, "WARN only: held-out success rate of the recommended strategy > the "
                          "matched rule's first listed strategy (else guard-try), on the same errors; on the corpus "
                          "the bandit can at best tie it, its value is adapting to feedback", blocking=False),),
    descriptions={
        SPLIT_HOLDS: "group split by a hash of the program: no held-out program's fix outcome updates the posteriors",
        TEST_SIZE: f"at least {MIN_TEST_ERRORS} held-out errors with two or more tried strategies",
        beats("random"): "held-out success rate of the recommended strategy (highest posterior mean) > a uniform "
                         "choice among the tried strategies, on the same errors",
    })

EFFECTIVENESS = ModelSpec(
    name="kforge-healing-effectiveness", family=FAMILY, asset_key="healing_fix_effectiveness",
    metric="heldout_brier", higher_is_better=False, baselines=(CONSTANT,), split="group", split_unit="programs",
    min_test_rows=MIN_TEST_OUTCOMES, point_in_time=False,
    descriptions={
        SPLIT_HOLDS: "group split by a hash of the program: no held-out program's fix outcome is used in training",
        TEST_SIZE: f"at least {MIN_TEST_OUTCOMES} held-out fix outcomes",
        beats(CONSTANT): "held-out Brier score of P(fix works) < the old constant 0.7's, on the same outcomes",
    })

SPECS = (CLASSIFIER, BANDIT, EFFECTIVENESS)


def static_rule_check(score: float, static_rule: float) -> Check:
    """The WARN-only ``beats_static_rule`` gate of the bandit (same comparison as a baseline gate)."""
    return beats_check(BANDIT, "static_rule", score, static_rule)
