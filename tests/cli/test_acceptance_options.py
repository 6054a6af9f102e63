"""The acceptance ablation switches reach the code they name: ``--no-group-balanced`` and
``--text-encoder`` on ``train`` (into TrainConfig, as the asset's config does) and on ``evaluate``
(into the suites' options)."""

from pathlib import Path

import pytest
from kforge.acceptance.train import TrainConfig
from kforge.cli.acceptance import train_config
from kforge.cli.main import build_parser
from kforge.config import Paths

from assets.acceptance import AcceptanceConfig


def test_train_flags_map_into_the_config_the_asset_builds() -> None:
    parse = build_parser().parse_args
    assert TrainConfig().group_balanced is True and TrainConfig().text_encoder is False
    cfg = train_config(parse(["acceptance", "train", "--no-group-balanced", "--text-encoder"]))
    assert cfg == TrainConfig(group_balanced=False, text_encoder=True)
    assert cfg == AcceptanceConfig(group_balanced=False, text_encoder=True).train_config()


def test_evaluate_passes_the_options_to_the_suite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kforge.acceptance import evaluate
    from kforge.cli.acceptance import cmd_evaluate
    from kforge.cli.common import Ctx
    from kforge.text import encoder as text_mod

    seen: list[object] = []
    before = list(text_mod._CURRENT)   # an earlier test may have left the process default installed
    monkeypatch.setitem(evaluate.SUITES, "jit-cross",
                        lambda data, n, opts: seen.append((n, opts, text_mod.current_encoder())) or {})
    (tmp_path / "jit_anchors").mkdir()
    args = build_parser().parse_args(["acceptance", "evaluate", "jit-cross", "--no-group-balanced",
                                      "--n-estimators", "7"])
    ctx = Ctx(Paths.of(tmp_path / "home"), tmp_path)
    assert cmd_evaluate(ctx, args) == 0
    assert seen[0][:2] == (7, evaluate.SuiteOptions(text_encoder=False, group_balanced=False))
    # the suite embeds (if at all) through the home's encoder, cached in its warehouse; nothing was loaded
    enc = seen[0][2]
    assert enc.paths.home == ctx.paths.home and enc.warehouse is not None and enc.computed == 0
    assert enc not in text_mod._CURRENT and text_mod._CURRENT == before  # installed for the command only
