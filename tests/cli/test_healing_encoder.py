"""``kforge healing train --text-encoder`` switches the encoder members on and trains under the home's encoder;
without the flag no encoder is handed over (the default, chosen by the numbers in
docs/notes/issue-16-healing-session7.md)."""

from pathlib import Path

import pytest
from kforge.cli.main import main
from kforge.healing import train as healing_train
from kforge.healing.config import HealingConfig, HealingRelease


@pytest.mark.parametrize("flag", [None, "--text-encoder", "--no-text-encoder"])
def test_train_flag_reaches_the_config_and_the_encoder(kforge_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                       flag: str | None) -> None:
    seen: list[tuple[HealingConfig, object]] = []

    def fake_release(tracker: object, wh: object, config: HealingConfig, *, dagster_run_id: str = "",
                     encoder: object = None) -> HealingRelease:
        seen.append((config, encoder))
        return HealingRelease()

    monkeypatch.setattr(healing_train, "train_and_release", fake_release)
    monkeypatch.setattr(healing_train, "store_corpus", lambda wh: None)
    argv = ["--home", str(kforge_home), "healing", "train", "--models", "classifier", *([flag] if flag else [])]
    assert main(argv) == 0
    config, encoder = seen[0]
    on = flag == "--text-encoder" or (flag is None and HealingConfig.text_encoder)
    assert config.text_encoder is on
    if on:
        assert encoder is not None and encoder.paths.home == kforge_home.resolve() and encoder.warehouse is not None
        assert encoder.computed == 0   # nothing embedded until a member asks
    else:
        assert encoder is None


@pytest.mark.parametrize("flag", ["--text-encoder", "--no-text-encoder"])
def test_evaluate_flag_reaches_the_evaluation(kforge_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              flag: str) -> None:
    from kforge.healing import report
    from kforge.text import encoder as text_mod

    def installed() -> object:
        return text_mod._CURRENT[-1] if text_mod._CURRENT else None

    seen: list[tuple[bool, object]] = []

    def fake_run(*_a: object, text_encoder: bool = False, **_k: object) -> list[str]:
        seen.append((text_encoder, installed()))
        return ["== ok"]

    monkeypatch.setattr(report, "run_evaluation", fake_run)
    (tmp_path / "data" / "healing").mkdir(parents=True)
    before = installed()
    assert main(["--home", str(kforge_home), "--data", str(tmp_path / "data"), "healing", "evaluate", "--kind", "python",
                 flag]) == 0
    on, enc = seen[0]
    assert on is (flag == "--text-encoder")
    assert (enc is not before and enc.paths.home == kforge_home.resolve()) if on else enc is before
    assert installed() is before   # the home's encoder is installed for the command only
