"""``kforge materialize --select``: a selection that cannot be parsed is one error line naming it; an error that
has nothing to do with the selection is never reported as an invalid selection (session 9)."""

from pathlib import Path

import pytest
from kforge.cli.main import main


def test_a_malformed_selection_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path / "h"), "materialize", "--select", "group:kernel_commits and ("]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kforge: error: invalid --select 'group:kernel_commits and ('")


def test_a_failure_after_the_selection_is_not_called_an_invalid_selection(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import kforge.dagster_io.materialize as mat

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("the run storage returned a bad row")

    monkeypatch.setattr(mat, "materialize_selection", broken)
    with pytest.raises(ValueError, match="bad row"):   # before: "kforge: error: invalid --select ..."
        main(["--home", str(tmp_path / "h"), "materialize", "--select", "group:kernel_commits"])
    assert "invalid --select" not in capsys.readouterr().err
