"""Outcomes come from running the composed classes: known conflicts appear, and depend on order."""

import pytest
from kforge.mixins.components.base import FailurePlan, Request
from kforge.mixins.harness import run_scenario, run_trial
from kforge.mixins.scenarios import SCENARIOS, Scenario


@pytest.mark.parametrize("node", ["EFFECT", "COMPUTE", "REDUCER", "ORCHESTRATOR"])
def test_every_node_alone_passes_every_scenario(catalogue, node):
    for scenario in SCENARIOS:
        for seed in range(3):
            t = run_trial(catalogue, [], node, scenario, seed)
            assert t.passed, (node, scenario, seed, t.conflict_reason, t.detail)


def _auth() -> Scenario:
    return Scenario("auth", "sync", False, [Request("a", 3, rid=0), Request("a", 3, user="mallory", rid=1)])


def test_cache_in_front_of_authorization_serves_unauthorised_users(catalogue):
    assert run_scenario(catalogue, ["Caching", "Authorization"], "COMPUTE", _auth())[0] == "authorization_bypass"
    assert run_scenario(catalogue, ["Authorization", "Caching"], "COMPUTE", _auth())[0] is None


def test_logging_outside_security_leaks_the_token(catalogue):
    sc = Scenario("s", "sync", False, [Request("a", 1, rid=0)])
    assert run_scenario(catalogue, ["Logging", "Security"], "COMPUTE", sc)[0] == "secret_leaked"
    assert run_scenario(catalogue, ["Security", "Logging"], "COMPUTE", sc)[0] is None


def test_repository_extends_connection_so_one_order_cannot_compose(catalogue):
    sc = Scenario("s", "sync", False, [Request("a", 1, rid=0)])
    assert run_scenario(catalogue, ["Connection", "Repository"], "EFFECT", sc)[0] == "mro_conflict"
    assert run_scenario(catalogue, ["Repository", "Connection"], "EFFECT", sc)[0] is None


def test_healthcheck_hook_not_chaining_skips_the_others(catalogue):
    sc = Scenario("lifecycle", "sync", False, [Request("a", 1, rid=0)], check_lifecycle=True)
    reason, detail = run_scenario(catalogue, ["HealthCheck", "EventBus"], "COMPUTE", sc)
    assert reason == "lifecycle_hook_skipped" and "on_start" in detail
    assert run_scenario(catalogue, ["EventBus", "HealthCheck"], "COMPUTE", sc)[0] == "lifecycle_hook_skipped"
    # the pool is opened in ConnectionMixin.on_start: skipped -> the request itself fails
    plain = Scenario("s", "sync", False, [Request("a", 1, rid=0)])
    assert run_scenario(catalogue, ["HealthCheck", "Connection"], "COMPUTE", plain)[0] == "lifecycle_hook_skipped"


def test_retry_reruns_side_effects_unless_a_transaction_is_inside(catalogue):
    def sc() -> Scenario:
        return Scenario("f", "sync", False, [Request("a", 1, rid=0)], {"failures": FailurePlan({"after": {0}})})

    assert run_scenario(catalogue, ["Retry"], "EFFECT", sc())[0] == "duplicate_side_effect"
    assert run_scenario(catalogue, ["Retry", "Transaction"], "EFFECT", sc())[0] is None
    assert run_scenario(catalogue, ["Retry", "Audit"], "EFFECT", sc())[0] in ("duplicate_side_effect", "audit_duplicate")


def test_sync_timeout_cannot_cancel_but_async_can(catalogue):
    def sc(mode: str) -> Scenario:
        return Scenario("slow", mode, False, [Request("a", 1, rid=0)], {"delay_s": 0.02, "timeout_s": 0.002})

    assert run_scenario(catalogue, ["Timeout"], "EFFECT", sc("sync"))[0] == "effect_after_timeout"
    assert run_scenario(catalogue, ["Timeout"], "EFFECT", sc("async"))[0] is None


def test_circuit_breaker_and_healthcheck_collide_on_an_attribute(catalogue):
    sc = Scenario("f", "sync", False, [Request("a", 1, rid=0)], {"failures": FailurePlan({"before": {0}})})
    reason, _ = run_scenario(catalogue, ["CircuitBreaker", "HealthCheck"], "COMPUTE", sc)
    assert reason == "crash:TypeError"


def test_trials_are_reproducible(catalogue):
    a = run_trial(catalogue, ["Retry", "Caching"], "REDUCER", "sync_failures", 5)
    b = run_trial(catalogue, ["Retry", "Caching"], "REDUCER", "sync_failures", 5)
    assert (a.passed, a.conflict_reason) == (b.passed, b.conflict_reason)
