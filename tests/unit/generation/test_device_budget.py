"""The LM's device, budget, batch/learning-rate rule and precision (kforge.generation.device, train.TrainConfig).

No GPU here: the CUDA choices are tested by calling the selection functions with a fake capability, and
the mixed-precision training loop (autocast + GradScaler) runs on the CPU through the same code."""

import math
from types import SimpleNamespace

import pytest
import torch
from kforge.errors import InputError
from kforge.generation import device as devices
from kforge.generation import train as T
from kforge.generation.backbones import ScratchBackbone
from kforge.generation.lm import TinyLMConfig
from kforge.generation.prompts import Example


@pytest.fixture(scope="module")
def backbone():
    return ScratchBackbone.create(["static int f(void) { return 0; }"] * 20,
                                  TinyLMConfig(vocab_size=300, d_model=16, n_layers=1, n_heads=2, max_len=32, dropout=0.0))


def _examples(n: int = 24, length: int = 20) -> list[Example]:
    return [Example([5 + (i + j) % 40 for j in range(length)], 8) for i in range(n)]


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_device_is_cpu_without_a_gpu_and_the_choice_is_logged(no_gpu):
    lines: list[str] = []
    cfg = T.TrainConfig(steps=1).resolved(log=lines.append)
    assert (cfg.device, cfg.batch_size, cfg.lr) == ("cpu", 8, pytest.approx(3e-3))
    assert len(lines) == 1 and lines[0].startswith("LM device: cpu (auto: torch sees no CUDA device)")
    assert "batch 8 x 1, lr 0.003 (scaled to the batch), fp32" in lines[0]
    cfg = T.TrainConfig(steps=1, device="cpu").resolved(log=lines.append)
    assert cfg.device == "cpu" and lines[-1].startswith("LM device: cpu (asked for cpu")
    assert devices.resolve_device("auto", cuda_available=True) == "cuda"
    with pytest.raises(InputError, match="no CUDA device"):
        T.TrainConfig(steps=1, device="cuda").resolved()
    with pytest.raises(InputError, match="device must be one of"):
        devices.resolve_device("tpu")


def test_batch_and_learning_rate_follow_the_device(monkeypatch):
    assert (devices.default_batch_size("cpu"), devices.default_batch_size("cuda"), devices.default_batch_size("cuda:1")) == (8, 64, 64)
    assert devices.scaled_lr(8) == pytest.approx(3e-3)
    assert devices.scaled_lr(64) == pytest.approx(3e-3 * math.sqrt(8), rel=1e-4)
    assert devices.scaled_lr(16, grad_accum=2) == pytest.approx(6e-3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert T.TrainConfig(steps=1, batch_size=32).resolved().lr == pytest.approx(6e-3)
    assert T.TrainConfig(steps=1, batch_size=32, lr=1e-3).resolved().lr == 1e-3     # an explicit lr is kept
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)                   # a fake GPU
    cuda = T.TrainConfig(steps=1).resolved()
    assert (cuda.device, cuda.batch_size, cuda.lr) == ("cuda", 64, pytest.approx(8.485e-3, rel=1e-3))


def test_precision_selection_with_fake_capabilities():
    bf16 = devices.precision_for("cuda", amp=True, bf16_supported=True)
    fp16 = devices.precision_for("cuda:0", amp=True, bf16_supported=False)
    assert (bf16.name, bf16.dtype, bf16.scaler) == ("bf16", torch.bfloat16, False)
    assert (fp16.name, fp16.dtype, fp16.scaler) == ("fp16", torch.float16, True)
    assert devices.precision_for("cuda", amp=False, bf16_supported=True) == devices.FP32
    assert devices.precision_for("cpu", amp=True, bf16_supported=True) == devices.FP32   # nothing on CPU
    assert devices.grad_scaler(fp16, "cpu").is_enabled() and not devices.grad_scaler(bf16, "cpu").is_enabled()
    with devices.autocast(bf16, "cpu"):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.bfloat16
    with devices.autocast(devices.FP32, "cpu"):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_the_mixed_precision_loop_runs_on_cpu(backbone, monkeypatch, no_gpu, name):
    """The CUDA branch of the loop (autocast, and for fp16 the GradScaler) with a precision chosen as on a GPU."""
    chosen = devices.precision_for("cuda", amp=True, bf16_supported=name == "bf16")
    scalers, real = [], devices.grad_scaler
    monkeypatch.setattr(devices, "precision_for", lambda device, amp: chosen)
    monkeypatch.setattr(devices, "grad_scaler", lambda p, dev: scalers.append(real(p, dev)) or scalers[-1])
    res = T.train(backbone, _examples(), T.TrainConfig(steps=3, batch_size=4, warmup=1))
    assert res.precision == name and res.steps_done == 3 and all(math.isfinite(h["loss"]) for h in res.history)
    assert scalers[0].is_enabled() == (name == "fp16")


def test_a_token_budget_stops_at_the_right_step_count(backbone, no_gpu):
    ex = _examples(24, 20)                  # 20 tokens each: 160 per step of batch 8
    res = T.train(backbone, ex, T.TrainConfig(budget_tokens=160 * 7, batch_size=8, warmup=1))
    assert (res.planned_steps, res.steps_done, res.tokens) == (7, 7, 160 * 7)
    assert T.train(backbone, ex, T.TrainConfig(budget_tokens=160 * 7 + 1, batch_size=8)).steps_done == 8
    assert T.planned_steps(T.TrainConfig(epochs=2.0, batch_size=8).resolved(), ex, 32) == 6
    assert T.planned_steps(T.TrainConfig(steps=5, budget_tokens=10**6, batch_size=8).resolved(), ex, 32) == 5
    # tokens are counted as collated: truncated to max_len
    assert T.planned_steps(T.TrainConfig(budget_tokens=8 * 16 * 3, batch_size=8).resolved(), _examples(8, 50), 16) == 3
    # the demo's budget buys what its 40 CPU steps of batch 8 did (demo examples average ~270 tokens)
    demo = T.budget_preset("auto", "demo")
    assert T.planned_steps(T.TrainConfig(**demo, batch_size=8).resolved(), _examples(8, 270), 320) == 40
    with pytest.raises(InputError, match="budget"):
        T.TrainConfig(epochs=0.0).validate()


def test_budget_presets():
    assert T.budget_preset("auto", "demo") == {"steps": 0, "budget_tokens": 86_000, "epochs": 0.0, "max_minutes": 0.0}
    assert T.budget_preset("auto", "cli") == {"steps": 0, "budget_tokens": 0, "epochs": 12.0, "max_minutes": 20.0}
    assert T.budget_preset("nightly", max_minutes=5)["max_minutes"] == 5
    assert T.budget_preset("nightly", steps=3) == {"steps": 3, "budget_tokens": 0, "epochs": 0.0, "max_minutes": 0.0}
    with pytest.raises(InputError):
        T.budget_preset("weekly")
    from kforge.generation.pipeline import GenerationConfig

    assert GenerationConfig.from_flat(trigger="demo").train.budget_tokens == 86_000
    nightly = GenerationConfig.from_flat().train
    assert (nightly.epochs, nightly.max_minutes, nightly.device, nightly.amp) == (12.0, 20.0, "auto", True)


def test_a_time_budget_fits_the_schedule_and_decays_to_zero(backbone, monkeypatch, no_gpu, tmp_path):
    assert T.fitted_horizon(5, 0, 10.0, 60.0, 1000) == 30         # 2 s a step, 50 s left: 25 more
    assert T.fitted_horizon(5, 0, 10.0, 60.0, 12) == 12           # the budget in steps binds first
    assert T.fitted_horizon(5, 0, 70.0, 60.0, 1000) == 5          # already over: stop here
    clock = iter(range(10**6))                                    # a fake clock: one second per reading
    monkeypatch.setattr(T, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    res = T.train(backbone, _examples(), T.TrainConfig(epochs=1000.0, batch_size=4, warmup=2, max_minutes=0.5,
                                                       checkpoint_dir=str(tmp_path)))
    assert (res.planned_steps, res.horizon_steps) == (6000, 30)   # 1 s a step: 30 of the 30 s
    assert res.steps_done == res.horizon_steps and not res.stopped_early   # ended by the fitted schedule, not the cap
    assert res.history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)
    assert T.load_checkpoint(tmp_path / "last.pt")["fitted_horizon"] == res.horizon_steps
