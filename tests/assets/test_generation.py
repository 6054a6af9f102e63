"""Materialize the generation group on a tiny corpus, then check the registry, the CLI and the sensor."""

import json
import sys
from pathlib import Path

import dagster as dg
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "generation"))
from gen_synthetic import make_rows  # noqa: E402
from kforge.config import Paths  # noqa: E402
from kforge.dagster_io.resources import home_resources  # noqa: E402
from kforge.storage import Warehouse  # noqa: E402

from assets.generation import generation_corpus, generation_models  # noqa: E402
from jobs.generation import generation_feedback_sensor  # noqa: E402

RUN_CFG = {"ops": {"generation_corpus": {"config": {"val_frac": 0.15, "test_frac": 0.15}},
                   "generation_models": {"config": {"steps": 30, "d_model": 48, "n_layers": 1, "vocab_size": 500,
                                                    "max_len": 192, "eval_rows": 20, "level1_estimators": 10,
                                                    "adapter_families": 1}}}}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    torch.set_num_threads(1)
    h = tmp_path_factory.mktemp("kforge")
    wh = Warehouse(Paths.of(h).ensure().warehouse)
    rows = make_rows(300)
    wh.replace("commit_diffs", rows.drop("author_email", "author_name"))
    wh.replace("commits", rows.select("repo", "sha", "author_email", "author_name"))
    res = home_resources(str(h))
    result = dg.materialize([generation_corpus, generation_models], resources=res, run_config=RUN_CFG,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return h, result, res


def _checks(result) -> dict:
    return {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}


def _md(result, asset: str) -> dict:
    return next(m for m in result.asset_materializations_for_node("generation_models") if m.asset_key.path == [asset]).metadata


def _client(h):
    from kforge.registry import Tracker

    return Tracker(Paths.of(h)).client()


def test_group_materializes_registers_and_checks(home):
    h, result, _ = home
    checks = _checks(result)
    assert checks[("generation_corpus", "split_by_time")].passed
    assert checks[("generation_corpus", "test_set_large_enough")].passed
    assert checks[("generation_lm", "loss_fell")].passed
    assert checks[("generation_lm", "split_holds")].passed and checks[("generation_lm", "no_future_features")].passed
    assert checks[("generation_level1", "beats_majority")].passed
    assert checks[("generation_level1", "split_holds")].passed and checks[("generation_level1", "test_size")].passed
    assert ("generation_lm", "beats_champion") in checks and ("generation_level1", "beats_champion") in checks
    lm, l1 = _md(result, "generation_lm"), _md(result, "generation_level1")
    assert lm["model_version"].value == 1 and l1["model_version"].value == 1
    assert l1["gate_decision"].value == "promoted"  # beats the majority label, no champion yet
    assert lm["gate_decision"].value == ("promoted" if checks[("generation_lm", "beats_nngen")].passed else "blocked")
    client = _client(h)
    mv = client.get_model_version("kforge-generation-lm", "1")
    assert mv.tags["kforge.gate.decision"] == lm["gate_decision"].value
    run = client.get_run(mv.run_id)
    assert run.data.tags["asset_key"] == "generation_lm" and run.data.tags["data_version"] != "unknown"
    for k in ("test_lm_bleu_norm", "test_nngen_bleu_norm", "test_lm_bleu_moses", "test_lm_rouge_l",
              "test_lm_prefix_acc", "test_lm_perplexity", "baseline_nngen_test_lm_bleu_norm", "test_lm_junk_rate",
              "test_lm_noprefix_bleu_norm", "test_nngen_noprefix_bleu_norm", "test_lm_noprefix_rouge_l",
              "test_nngen_noprefix_rouge_l", "test_lm_acceptable_rate", "test_nngen_acceptable_rate"):
        assert k in run.data.metrics
    # the gate compares the like-for-like pair (both given level 1's prefix), from the logged metrics
    rm = run.data.metrics
    ev = checks[("generation_lm", "beats_nngen")]
    assert ev.passed == (rm["test_lm_bleu_norm"] > rm["test_nngen_bleu_norm"]
                         and rm["test_lm_rouge_l"] > rm["test_nngen_rouge_l"])
    for k in ("nngen_bleu_norm", "nngen_rouge_l", "nngen_noprefix_bleu_norm", "lm_noprefix_bleu_norm"):
        assert ev.metadata[k].value == pytest.approx(rm[f"test_{k}"], abs=1e-3), k
    assert rm["baseline_nngen_test_lm_bleu_norm"] == pytest.approx(rm["test_nngen_bleu_norm"])
    import io

    import mlflow
    import polars as pl

    samples = pl.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{mv.run_id}/test_samples.csv")))
    assert samples.height == RUN_CFG["ops"]["generation_models"]["config"]["eval_rows"]
    for col in ("lm", "nngen"):  # both start with level 1's prefix; the no-prefix NNGen is the plain baseline
        assert all(s.startswith(f"{p}:") for s, p in zip(samples[col], samples["predicted_subsystem"], strict=True))
    from kforge.generation import metrics

    assert rm["test_nngen_noprefix_bleu_norm"] == pytest.approx(
        metrics.bleu_norm(samples["nngen_noprefix"].to_list(), samples["reference"].to_list()), abs=1e-6)
    assert rm["test_lm_junk_rate"] == pytest.approx(metrics.junk_rate(samples["lm"].fill_null("").to_list()), abs=1e-6)

    info = mlflow.models.get_model_info("models:/kforge-generation-lm/1")
    assert "pytorch" in info.flavors
    model = mlflow.pytorch.load_model("models:/kforge-generation-lm/1")
    assert model(torch.tensor([[1, 2, 3]])).shape[-1] > 100
    # the registered LM directory carries the whole inference bundle
    local = Path(mlflow.artifacts.download_artifacts(f"{mv.source}/bundle"))
    assert (local / "meta.json").exists() and (local / "level1.pkl").exists()
    assert client.get_registered_model("kforge-generation-level1")
    # each adapter is kept only if it lowers its family's held-out (val) perplexity; the registry agrees
    gates = lm["adapter_gates"].value
    assert len(gates) == 1
    (fam, g), = gates.items()
    assert g["val_rows"] >= 1 and g["val_ppl_base"] > 0 and g["val_ppl_adapter"] > 0
    assert g["kept"] == (g["val_rows"] >= 3 and g["val_ppl_adapter"] < g["val_ppl_base"])
    lora = client.search_registered_models(f"name = 'kforge-generation-lora-{fam}'")
    assert bool(lora) == g["kept"] == (fam in lm["adapters"].value)
    if g["kept"]:
        amv = client.get_model_version(f"kforge-generation-lora-{fam}", "1")
        arun = client.get_run(amv.run_id)
        assert arun.data.metrics["val_ppl_adapter"] == pytest.approx(g["val_ppl_adapter"])
        assert arun.data.metrics["baseline_base_test_ppl_adapter"] == pytest.approx(g["test_ppl_base"])
        assert amv.tags["kforge.gate.decision"] == lm["adapters"].value[fam]["decision"]


def test_held_out_rows_are_the_ones_the_champion_is_scored_on(home):
    """The old hole: level 1's challenger was scored on the whole test split, its champion on the
    first eval rows. Now the registered models, re-scored by the release path's scorers, reproduce
    the challengers' metrics on exactly the rows named by the eval digest."""
    import mlflow
    import polars as pl
    from kforge.generation.bundle import Bundle
    from kforge.generation.release import _load_level1, level1_score, lm_score
    from kforge.registry.heldout import rows_digest

    h, result, _ = home
    test = Warehouse(Paths.of(h).warehouse).read_table("generation_corpus").filter(pl.col("split") == "test")
    lm, l1 = _md(result, "generation_lm"), _md(result, "generation_level1")
    client = _client(h)
    # level 1: the whole test split, for challenger and champion alike
    assert l1["eval_rows"].value == test.height > RUN_CFG["ops"]["generation_models"]["config"]["eval_rows"]
    assert l1["eval_rows_digest"].value == rows_digest(test["sha"])
    assert client.get_model_version("kforge-generation-level1", "1").tags["kforge.eval_rows_digest"] == rows_digest(test["sha"])
    l1_dir = Path(mlflow.artifacts.download_artifacts(client.get_model_version("kforge-generation-level1", "1").source))
    assert level1_score(_load_level1(l1_dir), test) == pytest.approx(l1["gate_challenger_score"].value, abs=1e-6)
    # the LM: the decoded test rows (eval_rows), for challenger and champion alike
    decoded = test.head(RUN_CFG["ops"]["generation_models"]["config"]["eval_rows"])
    assert lm["eval_rows_digest"].value == rows_digest(decoded["sha"])
    from kforge.registry import Tracker
    from kforge.registry.trusted import reader

    lm_mv = client.get_model_version("kforge-generation-lm", "1")
    lm_dir = Path(mlflow.artifacts.download_artifacts(lm_mv.source))
    bundle = Bundle.load(lm_dir / "bundle", read=reader(Tracker(Paths.of(h)), lm_mv.run_id))  # the digests recorded
    assert lm_score(bundle, decoded) == pytest.approx(lm["gate_challenger_score"].value, abs=1e-6)


def test_rematerializing_identical_data_registers_nothing(home):
    h, _, res = home
    client = _client(h)
    before = {m.name: len(client.search_model_versions(f"name='{m.name}'")) for m in client.search_registered_models()}
    again = dg.materialize([generation_corpus, generation_models], resources=res, run_config=RUN_CFG,
                           instance=dg.DagsterInstance.ephemeral())
    assert again.success
    for asset in ("generation_level1", "generation_lm"):
        md = _md(again, asset)
        assert md["gate_decision"].value == "unchanged" and md["model_version"].value == 1
    after = {m.name: len(client.search_model_versions(f"name='{m.name}'")) for m in client.search_registered_models()}
    assert {k: v for k, v in after.items() if k.startswith("kforge-generation")} == \
        {k: v for k, v in before.items() if k.startswith("kforge-generation")}
    # other level-1 params: new versions, each champion re-scored from the registry on the same rows
    cfg = {"ops": {**RUN_CFG["ops"], "generation_models": {"config": {
        **RUN_CFG["ops"]["generation_models"]["config"], "level1_estimators": 12}}}}
    third = dg.materialize([generation_corpus, generation_models], resources=res, run_config=cfg,
                           instance=dg.DagsterInstance.ephemeral())
    assert third.success
    l1 = _md(third, "generation_level1")
    assert l1["model_version"].value == 2 and l1["gate_champion_version"].value == 1
    tags = client.get_model_version("kforge-generation-level1", "2").tags
    assert tags["kforge.gate.champion_eval_rows_digest"] == tags["kforge.eval_rows_digest"]
    assert "could not be scored" not in tags["kforge.gate.reason"] and "other rows" not in tags["kforge.gate.reason"]
    lm = _md(third, "generation_lm")
    assert lm["model_version"].value == 2
    for fam, a in lm["adapters"].value.items():  # a kept adapter: its champion is re-scored on the family's rows
        assert a["decision"] in ("promoted", "blocked") and "could not be scored" not in a["reason"], fam
    if lm["gate_champion_version"].value != "":  # the first LM became champion: it was decoded on the same rows
        tags = client.get_model_version("kforge-generation-lm", "2").tags
        assert tags["kforge.gate.champion_eval_rows_digest"] == tags["kforge.eval_rows_digest"]
        assert "could not be scored" not in tags["kforge.gate.reason"]


def test_cli_generates_and_rejects_bad_input(home, tmp_path, capsys):
    h, _, _ = home
    from kforge.cli.main import main

    diff = tmp_path / "x.diff"
    diff.write_text(make_rows(20, seed=11)["diff"][0])
    assert main(["--home", str(h), "generate", "message", "--diff", str(diff), "--json", "--allow-challenger"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"].startswith("From ") and "Subject: [PATCH]" in out["text"] and out["neighbours"]
    assert 0.0 <= out["confidence"] <= 1.0
    from kforge.config import Paths
    from kforge.feedback import add_feedback
    from kforge.monitoring import monitoring_report
    from kforge.storage import Warehouse

    wh = Warehouse(Paths.of(h).warehouse)
    subject = next(ln for ln in out["text"].splitlines() if ln.startswith("Subject:"))
    add_feedback("generation", {"verdict": "edit", "generated_message": subject.split("] ", 1)[1],
                                "final_message": "eal: something better"}, wh)
    m = next(m for m in monitoring_report(wh)["models"] if m["model_name"] == "kforge-generation-lm")
    assert m["followed_rate"] == 1.0 and m["accuracy"] == 0.0 and m["model_version"] != "bundle"
    assert m["psi"]  # the diff was binned against the LM version's training reference
    assert main(["--home", str(h), "generate", "patch", "--issue", "ice rx queue leaks on reset", "--subsystem", "net/ice",
                 "--allow-challenger"]) == 0
    assert "X-Kforge-Subsystem: net/ice" in capsys.readouterr().out
    # --repo anchors the drafted hunks in a real tree: what is left applies there, the rest is dropped
    import subprocess

    from kforge.generation.evaluate import git_apply_check

    repo = tmp_path / "tree"
    (repo / "drivers" / "net" / "ice").mkdir(parents=True)
    (repo / "drivers" / "net" / "ice" / "ice_rxtx.c").write_text("".join(f"int v{i};\n" for i in range(50)))
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, capture_output=True)
    assert main(["--home", str(h), "generate", "patch", "--issue", "ice rx queue leaks on reset", "--subsystem",
                 "net/ice", "--repo", str(repo), "--allow-challenger"]) == 0
    text = capsys.readouterr().out
    assert "hunks anchored in the tree: " in text
    diff = text[text.index("diff --git"):text.index("-- \nkforge")] if "diff --git" in text else ""
    anchored = int(text.split("hunks anchored in the tree: ")[1].split(" of ")[0])
    assert (anchored > 0) == bool(diff) and (not diff or git_apply_check(repo, "HEAD", diff))
    # --file/--line: the focused patch task served: one hunk of that file, written against its lines at --rev
    assert main(["--home", str(h), "generate", "patch", "--issue", "reset v20 on stop", "--subsystem", "net/ice",
                 "--repo", str(repo), "--file", "drivers/net/ice/ice_rxtx.c", "--line", "20",
                 "--allow-challenger"]) == 0
    text = capsys.readouterr().out
    assert "one hunk of drivers/net/ice/ice_rxtx.c drafted against lines 12-27 of the tree" in text
    assert "X-Kforge-Confidence: n/a" in text   # a hunk has no calibrated confidence: none is invented
    diff = text[text.index("diff --git"):text.index("-- \nkforge")] if "diff --git" in text else ""
    assert not diff or git_apply_check(repo, "HEAD", diff)   # whatever is shown applies to that tree
    assert main(["--home", str(h), "generate", "patch", "--issue", "x", "--repo", str(repo), "--file", "no/such.c",
                 "--allow-challenger"]) == 2
    assert "no such file in the given revision" in capsys.readouterr().err
    assert main(["--home", str(h), "generate", "patch", "--issue", "x", "--file", "a.c", "--allow-challenger"]) == 2
    assert "--file needs --repo" in capsys.readouterr().err
    assert main(["--home", str(h), "generate", "patch", "--issue", "x", "--repo", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--home", str(h), "generate", "patch", "--issue", "x", "--repo", str(repo), "--rev", "nobranch"]) == 2
    assert "is not a commit" in capsys.readouterr().err
    bad = tmp_path / "bad.diff"
    bad.write_text("hello")
    assert main(["--home", str(h), "generate", "message", "--diff", str(bad)]) == 2
    assert main(["--home", str(h), "generate", "message", "--diff", str(tmp_path / "nope")]) == 2
    assert main(["--home", str(tmp_path / "empty"), "generate", "patch", "--issue", "x"]) == 2
    assert "no trained generation model" in capsys.readouterr().err


def test_cli_serves_the_champion_and_refuses_a_rejected_challenger(home, tmp_path, capsys):
    """Without a champion, `kforge generate` refuses (one error line naming --allow-challenger)
    instead of silently serving a version the release gate did not promote."""
    from kforge.cli.main import main
    from kforge.registry.aliases import get_alias

    h, _, _ = home
    diff = tmp_path / "x.diff"
    diff.write_text(make_rows(20, seed=11)["diff"][0])
    client, name = _client(h), "kforge-generation-lm"
    champ, chall = get_alias(client, name, "champion"), get_alias(client, name, "challenger")
    assert chall is not None
    args = ["--home", str(h), "generate", "message", "--diff", str(diff)]
    served = champ.version if champ is not None else chall.version
    client.set_registered_model_alias(name, "champion", served)  # a champion (promoted by hand if the gate did not)
    try:
        assert main(args) == 0  # the champion is served as is, without a word about challengers
        out = capsys.readouterr()
        assert f"X-Kforge-Model: {name} v{served} @champion;" in out.out and "challenger" not in out.err
        client.delete_registered_model_alias(name, "champion")
        for cmd in (args, ["--home", str(h), "generate", "patch", "--issue", "ice rx queue leaks on reset"]):
            assert main(cmd) == 2
            err = capsys.readouterr().err.splitlines()
            errors = [ln for ln in err if ln.startswith("kforge: error:")]
            assert len(errors) == 1 and "--allow-challenger" in errors[0] and f"v{chall.version}" in errors[0]
        assert main([*args, "--allow-challenger"]) == 0
        out = capsys.readouterr()
        assert f"X-Kforge-Model: {name} v{chall.version} @challenger" in out.out
        assert "serving challenger" in out.err and "did not promote" in out.err
    finally:
        if champ is not None:
            client.set_registered_model_alias(name, "champion", champ.version)
        elif get_alias(client, name, "champion") is not None:
            client.delete_registered_model_alias(name, "champion")


def test_feedback_sensor(home):
    h, _, res = home
    from kforge.errors import InputError
    from kforge.feedback import add_feedback, feedback_since
    from kforge.feedback.retrain import make_cursor, parse_cursor

    wh = Warehouse(Paths.of(h).warehouse)
    base = feedback_since("generation", wh).height  # an earlier test in this module may have added a verdict
    assert base < 5
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    assert isinstance(generation_feedback_sensor(ctx), dg.SkipReason)
    with pytest.raises(InputError, match="final_message"):
        add_feedback("generation", {"verdict": "edit", "generated_message": "x: y"}, wh)
    for _ in range(6):
        add_feedback("generation", {"verdict": "reject", "generated_message": "x: y"}, wh)
    top = int(feedback_since("generation", wh)["feedback_id"].max())
    ctx = dg.build_sensor_context(cursor=None, resources=res)
    req = generation_feedback_sensor(ctx)
    assert isinstance(req, dg.RunRequest) and "not accepted" in req.tags["kforge/trigger"]
    assert parse_cursor(ctx.cursor) == top and req.run_key == f"generation-drift-{top}"
    ctx = dg.build_sensor_context(cursor=make_cursor(top), resources=res)
    assert isinstance(generation_feedback_sensor(ctx), dg.SkipReason)
