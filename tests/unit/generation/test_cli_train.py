import json

from gen_synthetic import make_rows
from kforge.cli.main import main

TINY = ["--steps", "8", "--d-model", "32", "--layers", "1", "--vocab", "400", "--max-len", "160", "--eval-rows", "10",
        "--adapters", "0", "--batch-size", "4"]


def test_train_generation_cli(tmp_path, capsys):
    f = tmp_path / "demo.diffs.parquet"
    make_rows(260).write_parquet(f)
    ck = tmp_path / "ck"
    rc = main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--no-register",
               "--checkpoint-dir", str(ck), *TINY])
    assert rc == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("\n{") + 1:])
    assert report["metrics"]["train_steps"] == 8 and "test_nngen_bleu_norm" in report["metrics"]
    assert (ck / "last.pt").exists()
    assert main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--device", "cuda", *TINY]) == 2
    bad = tmp_path / "bad.diffs.parquet"
    make_rows(30).drop("diff").write_parquet(bad)
    assert main(["--home", str(tmp_path / "h"), "generation", "train", "--diffs", str(bad), *TINY]) == 2
    assert "lacks column" in capsys.readouterr().err
