"""The three registered telemetry models, declared once for the release path and the asset checks.

* ``kforge-telemetry-oom``: the OOM forecaster (LightGBM on windowed telemetry features), held out
  by seed (fit / calibration / test seeds), against the original ``heuristic``;
* ``kforge-telemetry-recommender``: the what-to-do recommender (its JSON config plus the forecaster
  version it uses), scored by held-out closed-loop cost against doing ``none``;
* ``kforge-telemetry-scheduler``: the learned scheduling policy, on held-out seeds and an unseen
  mix, against ``cfs`` and ``rr`` (round robin, 10 ms).
"""

from kforge.registry.gates import (
    BEATS_CHAMPION,
    NO_FUTURE_FEATURES,
    SPLIT_HOLDS,
    TEST_SIZE,
    GateSpec,
    ModelSpec,
    beats,
)

FAMILY = "telemetry"
MIN_TEST_INCIDENTS = 10
MIN_CLOSED_LOOP_RUNS = 2
MIN_TEST_WORKLOADS = 4

OOM_TARGET = "oom_target"
FORECASTER = ModelSpec(
    name="kforge-telemetry-oom", family=FAMILY, asset_key="oom_forecaster", metric="test_ap",
    baselines=("heuristic",), split="seed", split_unit="runs (by seed)", min_test_rows=MIN_TEST_INCIDENTS,
    extra_gates=(GateSpec(OOM_TARGET, "WARN only: >= 80% of held-out OOM incidents flagged >= 5 s ahead "
                          "(test_recall_5s) with a sample false-positive rate (test_fpr) < 10%", blocking=False),),
    descriptions={
        SPLIT_HOLDS: "fit, calibration (alarm threshold) and test runs come from disjoint seeds",
        NO_FUTURE_FEATURES: "every feature of a held-out sample is the same when computed from the run's samples "
                            "up to that second only (max abs difference 0 at three cut points)",
        TEST_SIZE: f"at least {MIN_TEST_INCIDENTS} held-out OOM incidents",
        beats("heuristic"): "held-out average precision (test_ap) > the original heuristic's AND incidents flagged "
                            ">= 5 s ahead (test_recall_5s) >= the heuristic's, on the same held-out runs",
        BEATS_CHAMPION: "test_ap > the champion's on the same held-out runs (decides promotion)",
    })

BEST_FIXED = "beats_best_fixed"
RECOMMENDER = ModelSpec(
    name="kforge-telemetry-recommender", family=FAMILY, asset_key="oom_recommender", metric="test_mean_cost",
    higher_is_better=False, baselines=("none",), split="seed", split_unit="closed-loop runs (workload, seed)",
    min_test_rows=MIN_CLOSED_LOOP_RUNS, point_in_time=False,
    extra_gates=(GateSpec(BEST_FIXED, "WARN only: mean closed-loop cost (test_mean_cost) < the best single fixed "
                          "action's (compact, reclaim or kill_largest on every alarm) on the same runs",
                          blocking=False),),
    descriptions={
        SPLIT_HOLDS: "the closed-loop seeds are disjoint from the forecaster's fit and calibration seeds",
        TEST_SIZE: f"at least {MIN_CLOSED_LOOP_RUNS} held-out closed-loop runs (workload, seed)",
        beats("none"): "mean closed-loop cost per run (test_mean_cost: OOM kill 100, chosen kill 30 + memory lost, "
                       "compaction stall, reclaimed cache) < doing nothing on alarms, on the same (workload, seed) runs",
        BEATS_CHAMPION: "test_mean_cost < the champion's, re-run in closed loop with the champion's recorded config "
                        "and forecaster version on the same (workload, seed) runs (decides promotion)",
    })

POLICY_TARGET = "policy_target"
SCHEDULER = ModelSpec(
    name="kforge-telemetry-scheduler", family=FAMILY, asset_key="scheduling_policy",
    metric="test_turnaround_gain_vs_cfs", baselines=("cfs", "rr"), split="seed",
    split_unit="workloads (unseen seeds, one unseen mix)", min_test_rows=MIN_TEST_WORKLOADS, point_in_time=False,
    extra_gates=(GateSpec(POLICY_TARGET, "WARN only: >= 15% better mean turnaround and >= 10% fewer context "
                          "switches than CFS; numpy decision p50 < 50 us", blocking=False),),
    descriptions={
        SPLIT_HOLDS: "held-out workloads use seeds never trained on, and include a mix never trained on",
        TEST_SIZE: f"at least {MIN_TEST_WORKLOADS} held-out workloads",
        beats("cfs"): "mean relative turnaround gain vs CFS (test_turnaround_gain_vs_cfs) > 0 on the held-out workloads",
        beats("rr"): "test_turnaround_gain_vs_cfs > round robin (10 ms)'s gain vs CFS on the same held-out workloads",
        BEATS_CHAMPION: "test_turnaround_gain_vs_cfs > the champion policy's on the same held-out workloads "
                        "(decides promotion)",
    })

SPECS = (FORECASTER, RECOMMENDER, SCHEDULER)
