"""Data-parallel LM training (DDP, gloo) under torchrun on 2 CPU processes with a tiny model.

Run as a script, this file is the torchrun worker that the test launches:
``torchrun --standalone --nproc_per_node=2 test_ddp.py WORKDIR``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CFG = {"steps": 12, "batch_size": 4, "grad_accum": 2, "lr": 5e-3, "warmup": 2, "checkpoint_every": 5, "seed": 11}


def _load(work: Path):  # noqa: ANN202
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.prompts import Example

    ex = [Example(ids, n) for ids, n in json.loads((work / "examples.json").read_text())]
    return ScratchBackbone.load(work / "bb"), ex


def worker(work: Path) -> None:
    """One rank: an interrupted run, then a resumed one from a different start, inside one group."""
    from kforge.generation import distributed
    from kforge.generation import train as T

    saves: list[int] = []
    real_save = T._save
    T._save = lambda path, state: (saves.append(int(state["step"])), real_save(path, state))[-1]
    ck = str(work / "ck")
    with distributed.process_group("cpu", "on") as denv:
        bb, ex = _load(work)
        first = T.train(bb, ex, T.TrainConfig(**CFG, checkpoint_dir=ck, max_minutes=1e-9))
        if denv.rank == 0:  # kept for a single-process resume of this 2-process checkpoint
            (work / "ck1").mkdir()
            (work / "ck1" / "last.pt").write_bytes((work / "ck" / "last.pt").read_bytes())
        bb2, _ = _load(work)
        if denv.rank == 1:  # a different start on rank 1: the checkpoint broadcast must override it
            with torch.no_grad():
                for p in bb2.model.parameters():
                    p.add_(1.0)
        second = T.train(bb2, ex, T.TrainConfig(**CFG, checkpoint_dir=ck))
        out = {"state": bb2.model.state_dict(), "history": second.history, "tokens": second.tokens,
               "first_tokens": first.tokens, "first_steps": first.steps_done, "first_stopped": first.stopped_early,
               "resumed_from": second.resumed_from, "saves": saves, "world": denv.world_size}
    torch.save(out, work / f"rank{denv.rank}.pt")


@pytest.fixture(scope="module")
def work(tmp_path_factory, corpus):
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.corpus import split_frames
    from kforge.generation.lm import TinyLMConfig
    from kforge.generation.pipeline import build_examples
    from kforge.generation.retrieval import RetrievalIndex

    d = tmp_path_factory.mktemp("ddp")
    train_rows = split_frames(corpus)["train"]
    texts = (train_rows["subject"] + "\n" + train_rows["diff"]).to_list()
    bb = ScratchBackbone.create(texts, TinyLMConfig(vocab_size=300, d_model=32, n_layers=1, n_heads=2, max_len=128,
                                                    dropout=0.0), seed=5)
    ex = build_examples(bb, train_rows, RetrievalIndex().fit(train_rows), self_in_index=True)
    bb.save(d / "bb")
    (d / "examples.json").write_text(json.dumps([[e.ids, e.n_prompt] for e in ex]))
    return d


def test_n_targets_matches_collate(work):
    from kforge.generation.train import collate, n_targets

    bb, ex = _load(work)
    for max_len in (bb.max_len, 40):
        for i in range(0, 60, 6):
            batch = ex[i:i + 6]
            _, _, labels = collate(batch, bb.pad_id, max_len)
            assert int((labels[:, 1:] != -100).sum()) == sum(n_targets(e, max_len) for e in batch)


def test_distributed_modes_outside_torchrun(work, monkeypatch):
    from kforge.errors import InputError
    from kforge.generation.train import TrainConfig, train

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    bb, ex = _load(work)
    with pytest.raises(InputError, match="torchrun"):
        train(bb, ex, TrainConfig(steps=1, distributed="on"))
    with pytest.raises(InputError, match="distributed must be"):
        train(bb, ex, TrainConfig(steps=1, distributed="maybe"))
    assert train(bb, ex, TrainConfig(steps=1, batch_size=2)).steps_done == 1  # auto: plain single process


def test_two_processes_equal_one_with_the_same_effective_batch(work):
    from kforge.generation.train import TrainConfig, train

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(work)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-4000:]
    r0, r1 = (torch.load(work / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["world"] == 2
    # both ranks end with bit-identical weights and the same (global) history
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), k
    assert [h["loss"] for h in r0["history"]] == [h["loss"] for h in r1["history"]]
    # the time limit stopped both ranks together after one step; both resumed from rank 0's checkpoint
    assert r0["first_steps"] == r1["first_steps"] == 1 and r0["first_stopped"] and r1["first_stopped"]
    assert r0["resumed_from"] == r1["resumed_from"] == 1
    # only rank 0 wrote checkpoints; the last one holds the final, unwrapped ("module."-free) weights
    assert r1["saves"] == [] and r0["saves"] == [1, 5, 10, 12]
    ck = torch.load(work / "ck" / "last.pt", weights_only=False)
    assert ck["step"] == 12 and ck["world_size"] == 2
    assert all(torch.equal(v, r0["state"][k]) for k, v in ck["model"].items())
    losses = [h["loss"] for h in r0["history"]]
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < losses[0] - 0.5
    # one process, same global batch (batch_size x grad_accum), same seed: same training
    bb, ex = _load(work)
    single = train(bb, ex, TrainConfig(**CFG, distributed="off"))
    assert single.tokens == r0["first_tokens"] + r0["tokens"]  # global token counts
    assert [h["loss"] for h in single.history] == pytest.approx(losses, rel=1e-4)
    for k, v in bb.model.state_dict().items():
        assert torch.allclose(v, r0["state"][k], atol=1e-4, rtol=1e-4), k
    # the 2-process checkpoint after step 1 resumes in one process onto the same trajectory
    bb1, _ = _load(work)
    resumed = train(bb1, ex, TrainConfig(**CFG, checkpoint_dir=str(work / "ck1")))
    assert resumed.resumed_from == 1 and resumed.steps_done == 12
    for k, v in bb1.model.state_dict().items():
        assert torch.allclose(v, bb.model.state_dict()[k], atol=1e-4, rtol=1e-4), k


def test_cli_nproc_spawns_torchrun_and_only_rank0_reports(tmp_path, capfd):
    from gen_synthetic import make_rows
    from kforge.cli.main import main

    f = tmp_path / "demo.diffs.parquet"
    make_rows(260).write_parquet(f)
    rc = main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--no-register", "--nproc", "2",
               "--checkpoint-dir", str(tmp_path / "ck"), "--steps", "6", "--d-model", "32", "--layers", "1",
               "--vocab", "400", "--max-len", "160", "--eval-rows", "10", "--adapters", "0", "--batch-size", "4"])
    out, err = capfd.readouterr()
    assert rc == 0, err[-3000:]
    assert "--nproc_per_node=2" in err and "--nproc" not in err.split("kforge.cli.main", 1)[1]
    assert out.count('{"corpus"') == 1 and out.count('"metrics"') == 1  # rank 1 printed nothing
    report = json.loads(out[out.index("\n{") + 1:])
    assert report["metrics"]["train_steps"] == 6
    ck = torch.load(tmp_path / "ck" / "last.pt", weights_only=False)
    assert ck["step"] == 6 and ck["world_size"] == 2
    assert main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--nproc", "4",
                 "--batch-size", "2"]) == 2
    assert "global batch" in capfd.readouterr().err


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
