import json

import pytest
from gen_synthetic import make_rows
from kforge.cli.main import main

TINY = ["--steps", "8", "--d-model", "32", "--layers", "1", "--vocab", "400", "--max-len", "160", "--eval-rows", "10",
        "--adapters", "0", "--batch-size", "4"]


def _report(out: str) -> dict:
    return json.loads(out[out.index("\n{") + 1:])


def test_train_generation_cli(tmp_path, capsys):
    f = tmp_path / "demo.diffs.parquet"
    make_rows(260).write_parquet(f)
    ck = tmp_path / "ck"
    rc = main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--no-register",
               "--checkpoint-dir", str(ck), *TINY])
    assert rc == 0
    report = _report(capsys.readouterr().out)
    assert report["metrics"]["train_steps"] == 8 and "test_nngen_bleu_norm" in report["metrics"]
    assert "release" not in report
    assert (ck / "last.pt").exists()
    assert main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--device", "cuda", *TINY]) == 2
    bad = tmp_path / "bad.diffs.parquet"
    make_rows(30).drop("diff").write_parquet(bad)
    assert main(["--home", str(tmp_path / "h"), "generation", "train", "--diffs", str(bad), *TINY]) == 2
    assert "lacks column" in capsys.readouterr().err


def test_train_generation_cli_releases_with_the_asset_split(tmp_path, capsys):
    """The CLI takes the asset's split fractions and level-1 settings and goes through the same release path."""
    f = tmp_path / "demo.diffs.parquet"
    make_rows(260).write_parquet(f)
    rc = main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--test-frac", "0.2",
               "--val-frac", "0.15", "--level1-estimators", "5", *TINY])
    assert rc == 0
    out = capsys.readouterr().out
    corpus = json.loads(out.splitlines()[0])["corpus"]
    assert corpus["test"] >= 0.19 * (corpus["train"] + corpus["val"] + corpus["test"])
    report = _report(out)
    rel = report["release"]
    assert rel["level1"]["model"] == "kforge-generation-level1" and rel["level1"]["decision"] in ("promoted", "blocked")
    # 10 decoded rows are fewer than the LM's minimum: blocked, and said so
    assert rel["lm"]["decision"] == "blocked" and "test_size" in rel["lm"]["reason"]
    from kforge.config import Paths
    from kforge.registry import Tracker

    client = Tracker(Paths.of(tmp_path / "h")).client()
    run = client.get_run(client.get_model_version("kforge-generation-level1", "1").run_id)
    assert run.data.params["level1_n_estimators"] == "5"
    assert run.info.run_name.startswith("kforge-generation-level1 ") and run.info.run_name.endswith(" cli")


def test_cli_and_asset_map_into_one_config():
    import argparse

    from kforge.cli.generation import register, train_config

    from assets.generation import CorpusConfig, GenerationTrainConfig

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", "generation", "--val-frac", "0.2", "--test-frac", "0.25", "--max-rows", "50",
                              "--level1-estimators", "7", "--steps", "3", "--d-model", "64", "--layers", "2",
                              "--vocab", "300", "--max-len", "128", "--eval-rows", "9", "--adapters", "1",
                              "--adapter-steps", "4", "--calib-rows", "11", "--lr", "0.003",
                              "--extra-diffs", "a.diffs.parquet", "b.diffs.parquet"])
    corpus, cfg = train_config(args)
    assert (corpus.val_frac, corpus.test_frac, corpus.max_rows) == (0.2, 0.25, 50)
    assert corpus.diff_files == ("a.diffs.parquet", "b.diffs.parquet")
    from kforge.generation.corpus import CorpusConfig as LibCorpusConfig

    assert LibCorpusConfig.from_flat(**CorpusConfig(val_frac=0.2, test_frac=0.25, max_rows=50, diff_files=[
        "a.diffs.parquet", "b.diffs.parquet"]).model_dump()) == corpus
    from kforge.generation.pipeline import GenerationConfig

    asset = GenerationConfig.from_flat(**GenerationTrainConfig(
        steps=3, d_model=64, n_layers=2, vocab_size=300, max_len=128, eval_rows=9, adapter_families=1, adapter_steps=4,
        calib_rows=11, level1_estimators=7, lr=0.003).model_dump())
    assert asset.level1.n_estimators == cfg.level1.n_estimators == 7
    assert asset.lm == cfg.lm and asset.eval_rows == cfg.eval_rows == 9 and asset.calib_rows == cfg.calib_rows
    assert (asset.adapter_families, asset.adapter_steps) == (cfg.adapter_families, cfg.adapter_steps)
    assert asset.train.steps == cfg.train.steps == 3 and asset.train.lr == pytest.approx(cfg.train.lr)


def test_diffs_and_extra_diffs_together_are_refused():
    import argparse

    from kforge.cli.generation import register, train_config
    from kforge.errors import InputError

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", "generation", "--diffs", "a.diffs.parquet", "--extra-diffs", "b.diffs.parquet"])
    with pytest.raises(InputError, match="give one of them"):
        train_config(args)


@pytest.mark.parametrize(("flat", "said"), [
    ({"n_heads": 5}, "multiple of n_heads"),        # used to end in a RuntimeError traceback after training level 1
    ({"n_layers": 0}, "n_layers"),
    ({"calib_rows": -3}, "calib_rows"),              # used to calibrate on val.tail(-3): all but three rows
    ({"adapter_families": -1}, "adapter_families"),
    ({"adapter_families": 1, "adapter_steps": 0}, "adapter_steps"),
    ({"level1_estimators": 0}, "n_estimators"),
])
def test_bad_generation_settings_are_refused_before_training(flat, said):
    from kforge.errors import InputError
    from kforge.generation.pipeline import GenerationConfig

    GenerationConfig.from_flat(steps=3).validate()          # the defaults pass
    with pytest.raises(InputError, match=said):
        GenerationConfig.from_flat(steps=3, **flat).validate()
