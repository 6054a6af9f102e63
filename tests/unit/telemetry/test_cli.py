import json

from kforge.cli.main import main


def test_cli_simulate_import_and_errors(tmp_path, capsys):
    home = str(tmp_path / "home")
    out = tmp_path / "h.jsonl"
    assert main(["--home", home, "telemetry", "simulate", "fragmenting", "--duration", "60", "--out", str(out)]) == 0
    assert main(["--home", home, "telemetry", "import-trace", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["samples_added"] == 60
    assert main(["--home", home, "telemetry", "import-trace", str(out)]) == 0      # idempotent
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["samples_added"] == 0
    assert main(["--home", home, "telemetry", "import-trace", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such trace file" in capsys.readouterr().err
    assert main(["--home", home, "telemetry", "simulate", "nope", "--out", str(out)]) == 2
    assert main(["--home", home, "telemetry", "evaluate", "--seeds", "1"]) == 2
    assert main(["--home", home, "telemetry", "train", "--model", "oom"]) == 2     # nothing stored yet
    assert "materialize memory_telemetry" in capsys.readouterr().err
    assert main(["--home", home, "telemetry", "train", "--model", "recommender"]) == 2
    assert "has no champion" in capsys.readouterr().err
    assert main(["--home", home, "telemetry", "monitoring"]) == 0


def test_bad_model_settings_are_one_error_line_before_any_work(tmp_path, capsys):
    """A negative target FPR used to index past the calibration scores, a negative epoch count or an
    empty seed list to end in IndexError / ColumnNotFoundError tracebacks after minutes of work."""
    home = str(tmp_path / "home")
    for args, said in ((["--model", "oom", "--target-fpr", "-0.1"], "target_fpr"),
                       (["--model", "oom", "--lead", "50"], "lead_s"),
                       (["--model", "oom", "--n-estimators", "0"], "n_estimators"),
                       (["--model", "scheduler", "--epochs", "-1"], "epochs"),
                       (["--model", "scheduler", "--sched-test-seeds", ""], "test seed"),
                       (["--model", "recommender", "--rec-seeds", ""], "one seed"),
                       (["--model", "recommender", "--lookahead", "-1"], "lookahead_s")):
        assert main(["--home", home, "telemetry", "train", *args]) == 2, args
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("kforge: error:") and said in err[0], (args, err)


def test_threshold_for_a_rate_outside_zero_one_is_refused():
    import numpy as np
    import pytest
    from kforge.errors import InputError
    from kforge.telemetry.forecast import threshold_for_fpr

    scores, y = np.linspace(0, 1, 100), np.zeros(100, dtype=int)
    for bad in (-0.1, 1.5):
        with pytest.raises(InputError, match="target_fpr"):
            threshold_for_fpr(scores, y, bad)


def test_train_all_checks_every_setting_before_simulating_or_registering(tmp_path, capsys):
    """Before: ``--model all`` built the scheduler's settings only after simulating telemetry and training and
    registering the forecaster (and the recommender), so a bad scheduler setting failed after work was stored."""
    from kforge.config import Paths
    from kforge.registry import Tracker
    from kforge.storage import Warehouse

    home = tmp_path / "home"
    rc = main(["--home", str(home), "telemetry", "train", "--model", "all", "--simulate", "--fit-seeds", "0",
               "--calib-seeds", "1", "--test-seeds", "2", "--sim-duration", "60", "--sched-test-seeds", ","])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "kforge: error: the scheduler needs at least one training seed and one test seed"]
    paths = Paths.of(home)
    assert not Warehouse(paths.warehouse).has_table("memory_telemetry")
    assert Tracker(paths).champion("kforge-telemetry-oom") is None


def test_configs_refuse_seeds_numpy_would_refuse():
    """A Dagster run config reaches these configs without the CLI's seed type: a negative seed used to fail
    as a numpy traceback minutes into a simulation."""
    import pytest
    from kforge.errors import InputError
    from kforge.telemetry.release import RecommenderConfig, SchedulerConfig, SimulationConfig

    with pytest.raises(InputError, match="fit_seeds must be within 0..4294967295, got -1"):
        SimulationConfig(fit_seeds=(0, -1))
    with pytest.raises(InputError, match="seeds must be within"):
        RecommenderConfig(seeds=(-3,))
    with pytest.raises(InputError, match="test_seeds must be within"):
        SchedulerConfig(test_seeds=(2**32,))
    assert SimulationConfig().fit_seeds and RecommenderConfig(seeds=(0, 2**32 - 1)).seeds
