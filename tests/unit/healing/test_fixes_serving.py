"""The strategy bandit in the serving path: ``kforge healing explain`` ranks the fix strategies by
the champion bandit's posterior and says so; without a champion it says it uses the static rule order."""

import hashlib
import re
from pathlib import Path

import polars as pl
import pytest
from kforge.cli.main import main
from kforge.config import Paths
from kforge.healing.bandit import ThompsonBandit, rank_strategies
from kforge.healing.config import HealingConfig
from kforge.healing.strategies import split_outcomes
from kforge.healing.train import ERRORS_TABLE, OUTCOMES_TABLE, train_and_release
from kforge.registry import Tracker
from kforge.storage import Warehouse

# py-keyerror's rule lists dict-get-default then guard-try; the recorded outcomes say otherwise
RATES = {"dict-get-default": 0.15, "guard-try": 0.45, "rename-key": 0.9}
TB = "Traceback (most recent call last):\n  File \"a.py\", line 3, in <module>\nKeyError: 'price'\n"


def _outcomes(n: int) -> list[dict]:
    def ok(program: str, strategy: str) -> bool:
        return int(hashlib.sha256(f"{program}/{strategy}".encode()).hexdigest()[:8], 16) / 16**8 < RATES[strategy]

    return [{"error_id": f"corpus-p{i}", "program": f"p{i}", "error_class": "py-keyerror", "exc_type": "KeyError",
             "strategy": s, "success": ok(f"p{i}", s)} for i in range(n) for s in RATES]


def _ranking(out: str) -> list[tuple[str, float, int]]:
    return [(m[1], float(m[2]), int(m[3]))
            for m in re.finditer(r"^\s+\d+\. (\S+)\s+posterior mean ([\d.]+)\s+n=(\d+)", out, re.M)]


def test_rank_strategies_by_posterior_or_static_order():
    bandit = ThompsonBandit().fit(_outcomes(40))
    ranked = rank_strategies("py-keyerror", ("dict-get-default", "guard-try"), "guard-try", bandit)
    assert [r.strategy for r in ranked] == ["rename-key", "guard-try", "dict-get-default"]   # rename-key: outcomes only
    assert [r.observations for r in ranked] == [40, 40, 40]
    assert ranked[0].posterior_mean == pytest.approx(bandit.mean("py-keyerror", "rename-key"))
    assert ranked[0].posterior_mean > ranked[1].posterior_mean > ranked[2].posterior_mean
    static = rank_strategies("py-keyerror", ("dict-get-default", "guard-try"), "guard-try", None)
    assert [(r.strategy, r.posterior_mean) for r in static] == [("dict-get-default", None), ("guard-try", None)]
    # a class the bandit never saw: its rule's strategies, by the strategies' record elsewhere
    fresh = rank_strategies("py-zerodiv", ("zero-guard", "guard-try"), "guard-try", bandit)
    assert [(r.strategy, r.observations) for r in fresh] == [("zero-guard", 0), ("guard-try", 0)]
    assert fresh[0].posterior_mean == pytest.approx(bandit.mean("py-zerodiv", "zero-guard"))


def test_explain_serves_the_champion_bandits_posterior(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    tb = tmp_path / "tb.txt"
    tb.write_text(TB)
    # no champion bandit: the static rule order, and it says so
    assert main(["--home", str(tmp_path / "empty"), "healing", "explain", str(tb)]) == 0
    out = capsys.readouterr().out
    assert "fix strategies for py-keyerror, in the static rule order (no champion kforge-healing-bandit" in out
    assert out.rstrip().endswith("1. dict-get-default\n  2. guard-try")
    assert _ranking(out) == []

    # a bandit released through the release path (promoted: it beats random on held-out programs)
    home = tmp_path / "home"
    paths = Paths.of(home)
    wh, tracker = Warehouse(paths.warehouse), Tracker(paths)
    outcomes = _outcomes(60)
    wh.replace(ERRORS_TABLE, pl.DataFrame([{"id": o["error_id"], "program": o["program"]} for o in outcomes[::3]]))
    wh.replace(OUTCOMES_TABLE, pl.DataFrame(outcomes))
    res = train_and_release(tracker, wh, HealingConfig(models=("bandit",), replay_steps=50)).bandit
    assert res is not None and res.decision == "promoted", res.reason
    assert main(["--home", str(home), "healing", "explain", str(tb)]) == 0
    out = capsys.readouterr().out
    assert f"ranked by the posterior of kforge-healing-bandit v{res.version} (champion)" in out
    train, _, _ = split_outcomes(outcomes, HealingConfig.test_share, HealingConfig.salt)
    champion = ThompsonBandit().fit(train)        # what was registered: the posteriors of the training programs
    expected = sorted(RATES, key=lambda s: -champion.mean("py-keyerror", s))
    n_train = len({o["program"] for o in train})
    got = _ranking(out)
    assert [(s, n) for s, _, n in got] == [(s, n_train) for s in expected]
    assert [m for _, m, _ in got] == pytest.approx([champion.mean("py-keyerror", s) for s in expected], abs=6e-4)
    assert [s for s, _, _ in _ranking(out)][:2] == ["rename-key", "guard-try"]     # not the rule's order
