"""The healing models on the one release path: stable held-out groups, the champion re-scored on the
same rows (never on its own training rows), a failed re-score blocks, identical data registers nothing."""

import hashlib
from pathlib import Path

import polars as pl
import pytest
from kforge.config import Paths
from kforge.feedback import add_feedback
from kforge.healing.bandit import ThompsonBandit
from kforge.healing.config import HealingConfig
from kforge.healing.effectiveness import FixEffectiveness
from kforge.healing.json_pyfunc import read_state, save_state_model
from kforge.healing.specs import BANDIT, EFFECTIVENESS
from kforge.healing.strategies import split_outcomes
from kforge.healing.train import ERRORS_TABLE, OUTCOMES_TABLE, split_tasks, train_and_release
from kforge.healing.training import build_tasks
from kforge.registry import Tracker
from kforge.storage import Warehouse

STRATEGIES = {"good": 0.9, "guard-try": 0.5, "bad": 0.1}
STRATS = ("bandit", "effectiveness")


def _ok(program: str, strategy: str) -> bool:
    u = int(hashlib.sha256(f"{program}/{strategy}".encode()).hexdigest()[:8], 16) / 16**8
    return u < STRATEGIES[strategy]


def _outcomes(n: int, prefix: str = "p") -> list[dict]:
    return [{"error_id": f"corpus-{prefix}{i}", "program": f"{prefix}{i}", "error_class": f"cls-{i % 3}",
             "exc_type": "KeyError", "strategy": s, "success": _ok(f"{prefix}{i}", s)}
            for i in range(n) for s in STRATEGIES]


def store_outcomes(home: Path, n: int) -> tuple[Tracker, Warehouse]:
    """A home holding the corpus tables of ``n`` programs' fix outcomes."""
    paths = Paths.of(home)
    wh = Warehouse(paths.warehouse)
    outcomes = _outcomes(n)
    wh.replace(ERRORS_TABLE, pl.DataFrame([{"id": o["error_id"], "program": o["program"]} for o in outcomes[::3]]))
    wh.replace(OUTCOMES_TABLE, pl.DataFrame(outcomes))
    return Tracker(paths), wh


@pytest.fixture()
def stores(kforge_home: Path) -> tuple[Tracker, Warehouse]:
    return store_outcomes(kforge_home, 80)


def _corpus_rows(n: int) -> list[dict]:
    return [{"id": f"corpus-p{i}", "program": f"p{i}", "traceback": f"Traceback\nKeyError: 'k{i}'\n",
             "label_root_cause": "typo", "label_exception_type": "KeyError", "label_ml_pipeline": "data"}
            for i in range(n)]


def test_feedback_never_moves_a_training_group_into_test() -> None:
    """The old hole: a seeded draw over the groups seen so far re-drew the test groups whenever
    feedback added a group, so a champion could be re-scored on rows it had trained on."""
    rows = _corpus_rows(60)
    fb = pl.DataFrame([{"feedback_id": i, "kind": "label", "traceback": f"Traceback\nNameError: x{i}\n",
                        "label": "label_root_cause", "value": "typo", "error_id": None, "log": None}
                       for i in range(1, 40)])
    before_train, before_test, check = split_tasks(build_tasks(None, rows), 0.3, "kforge")
    after_train, after_test, check2 = split_tasks(build_tasks(None, rows, fb), 0.3, "kforge")
    assert check.passed and check2.passed and check2.numbers["overlapping_groups"] == 0

    def groups(tasks: dict) -> set[str]:
        return {r["group"] for r in tasks["python"][0]}

    assert groups(after_train) & groups(before_test) == set()
    assert groups(before_train) <= groups(after_train)
    assert groups(before_test) <= groups(after_test)
    assert groups(after_test) - groups(before_test) <= {f"fb-{i}" for i in range(1, 40)}
    # the strategy models: the same programs on the same side, whatever outcomes are added
    tr, te, _ = split_outcomes(_outcomes(60), 0.3, "kforge")
    tr2, te2, _ = split_outcomes(_outcomes(60) + _outcomes(30, prefix="new"), 0.3, "kforge")
    assert {o["program"] for o in tr} <= {o["program"] for o in tr2}
    assert {o["program"] for o in te} == {o["program"] for o in te2 if not o["program"].startswith("new")}
    # and the classifier's and the strategies' held-out programs agree
    assert groups(before_test) == {f"p{i}" for i in range(60)} & {o["program"] for o in te}


def test_strategy_models_release_rescore_and_unchanged(stores: tuple[Tracker, Warehouse]) -> None:
    tracker, wh = stores
    config = HealingConfig(models=STRATS, replay_steps=200)
    r1 = train_and_release(tracker, wh, config)
    assert r1.bandit is not None and r1.effectiveness is not None
    assert r1.bandit.decision == "promoted", r1.bandit.reason
    assert r1.effectiveness.decision == "promoted", r1.effectiveness.reason
    assert r1.bandit.challenger_score > r1.bandit.baselines["random"]
    assert r1.effectiveness.challenger_score < r1.effectiveness.baselines["constant"]
    assert {c.name for c in r1.bandit.checks} == {g.name for g in BANDIT.gate_specs()}
    assert r1.strategy_scores is not None and r1.strategy_scores.height == 9
    assert wh.count("healing_strategy_scores") == 9

    # identical data: nothing new is registered
    r2 = train_and_release(tracker, wh, config)
    assert (r2.bandit.decision, r2.effectiveness.decision) == ("unchanged", "unchanged")
    client = tracker.client()
    for spec in (BANDIT, EFFECTIVENESS):
        assert len(client.search_model_versions(f"name='{spec.name}'")) == 1

    # feedback on new errors: a new version; the champion is scored on exactly the challenger's rows
    for i in range(12):
        for s in STRATEGIES:
            add_feedback("healing", {"kind": "fix", "error_id": f"fb-err-{i}", "error_class": "cls-0", "strategy": s,
                                     "success": _ok(f"fb{i}", s)}, wh)
    r3 = train_and_release(tracker, wh, config)
    for res, spec in ((r3.bandit, BANDIT), (r3.effectiveness, EFFECTIVENESS)):
        assert res.version == 2 and res.decision in ("promoted", "blocked")
        assert res.champion_version == 1 and res.champion_score is not None, res.reason
        assert res.champion_eval_rows_digest == res.eval_rows_digest
        tags = client.get_model_version(spec.name, "2").tags
        assert tags["kforge.gate.champion_eval_rows_digest"] == tags["kforge.eval_rows_digest"]
        assert tags["kforge.gate.decision"] == res.decision


def test_failed_champion_rescore_blocks_with_the_reason(stores: tuple[Tracker, Warehouse],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tracker, wh = stores
    config = HealingConfig(models=("effectiveness",))
    assert train_and_release(tracker, wh, config).effectiveness.promoted
    wh.replace(OUTCOMES_TABLE, pl.DataFrame(_outcomes(90)))

    def broken(model_dir: Path) -> None:
        raise ValueError("state file unreadable")

    monkeypatch.setattr("kforge.healing.strategies._load", broken)
    res = train_and_release(tracker, wh, config).effectiveness
    assert res.decision == "blocked" and "could not be scored" in res.reason and "state file unreadable" in res.reason
    assert int(tracker.champion(EFFECTIVENESS.name).version) == 1


def test_strategy_models_are_json_state_pyfuncs(tmp_path: Path) -> None:
    import mlflow.pyfunc
    import pandas as pd

    outcomes = _outcomes(30)
    bandit = ThompsonBandit().fit(outcomes)
    eff = FixEffectiveness().fit(outcomes)
    frame = pd.DataFrame({"error_class": ["cls-0", "cls-9"], "strategy": ["good", "bad"], "exc_type": ["KeyError", ""]})
    for name, model in (("bandit", bandit), ("eff", eff)):
        d = save_state_model(model.to_state(), tmp_path / name)
        assert not [p for p in d.rglob("*") if p.suffix in (".pkl", ".pickle")]
        assert read_state(d)["kind"] in ("bandit", "effectiveness")
        loaded = mlflow.pyfunc.load_model(str(d))
        assert [c.name for c in loaded.metadata.get_input_schema().inputs] == ["error_class", "strategy", "exc_type"]
        out = loaded.predict(frame)
        rows = frame.to_dict(orient="records")
        expected = [bandit.mean(r["error_class"], r["strategy"]) for r in rows] if name == "bandit" \
            else eff.predict(rows).tolist()
        assert out.iloc[:, 0].tolist() == pytest.approx(expected)
    assert ThompsonBandit.from_state(bandit.to_state()).best("cls-0", ["bad", "good", "guard-try"]) == "good"


def test_cli_train_reads_the_stored_tables(stores: tuple[Tracker, Warehouse], kforge_home: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """``kforge healing train`` calls the assets' function on the stored tables: it does not re-run the corpus."""
    import json

    from kforge.cli.main import main

    def no_rerun() -> None:
        raise AssertionError("the corpus was re-run instead of reading the stored tables")

    monkeypatch.setattr("kforge.healing.train.corpus_tables", no_rerun)
    tracker, _ = stores
    assert main(["--home", str(kforge_home), "healing", "train", "--models", "bandit,effectiveness",
                 "--replay-steps", "100"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [o["model"] for o in out] == [BANDIT.name, EFFECTIVENESS.name]
    assert all(o["decision"] == "promoted" for o in out)
    # the asset's function on the same table and config would register nothing new
    res = train_and_release(tracker, Warehouse(Paths.of(kforge_home).warehouse),
                            HealingConfig(models=STRATS, replay_steps=100))
    assert (res.bandit.decision, res.effectiveness.decision) == ("unchanged", "unchanged")
    assert main(["--home", str(kforge_home), "healing", "train", "--models", "nope"]) == 2
