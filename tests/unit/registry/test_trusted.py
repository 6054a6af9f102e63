"""kforge.registry.trusted: a pickle is unpickled only after its sha256 is found among the digests that
this home's registry recorded when kforge saved the file. Crafted, changed or truncated files, and files
from another home, are refused, and they are never unpickled."""

import pickle
from pathlib import Path

import pytest
from kforge.config import Paths
from kforge.errors import InputError, StorageError
from kforge.registry import Tracker, trusted

NAME = "healing_model.pkl"


class _Payload:
    """Pickles to a call of exec() that creates ``marker``: what a hostile model file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def crafted(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tracker, Tracker, Path, str]:
    """Two homes with a registry each; ``good`` was saved and recorded in the first."""
    root = tmp_path_factory.mktemp("trusted")
    a, b = Tracker(Paths(root / "a")), Tracker(Paths(root / "b"))
    good = root / "good.pkl"
    good.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with a.run("unit", "save") as run:
        assert trusted.record(good, NAME) == trusted.sha256_of(good.read_bytes())
        run_id = run.info.run_id
    with b.run("unit", "other"):
        other = root / "other.pkl"
        other.write_bytes(pickle.dumps({"weights": [4]}))
        trusted.record(other, NAME)
    return a, b, good, run_id


def test_the_payload_runs_code_when_unpickled_blindly(tmp_path: Path) -> None:
    """The hostile file used below is live: plain pickle.loads runs it (so the refusals below mean something)."""
    marker = tmp_path / "ran"
    pickle.loads(crafted(tmp_path / "x.pkl", tmp_path / "ran").read_bytes())  # noqa: S301 - the point of the test
    assert marker.exists()


def test_a_recorded_file_and_any_copy_of_it_load(homes, tmp_path: Path) -> None:  # noqa: ANN001
    a, _, good, run_id = homes
    copy = tmp_path / "renamed.bin"
    copy.write_bytes(good.read_bytes())
    for path in (good, copy):
        assert trusted.unpickle(path, NAME, trusted.reader(a)) == {"weights": [1, 2, 3]}
    assert trusted.unpickle(good, NAME, trusted.reader(a, run_id)) == {"weights": [1, 2, 3]}
    assert trusted.recorded(a, run_id, NAME) == trusted.sha256_of(good.read_bytes())


@pytest.mark.parametrize("variant", ["crafted", "appended", "flipped", "truncated", "empty", "other-kind"])
def test_unrecorded_files_are_refused_unread(homes, tmp_path: Path, variant: str) -> None:  # noqa: ANN001
    a, _, good, _ = homes
    marker = tmp_path / "ran"
    path = tmp_path / "model.pkl"
    data = good.read_bytes()
    if variant == "crafted":
        crafted(path, marker)
    elif variant == "appended":   # a recorded model with a payload glued on after it was saved
        path.write_bytes(data + pickle.dumps(_Payload(marker)))
    elif variant == "flipped":
        path.write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])
    elif variant == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif variant == "empty":
        path.write_bytes(b"")
    else:   # recorded, but as another kind of artifact
        path.write_bytes(data)
    name = "level1.pkl" if variant == "other-kind" else NAME
    with pytest.raises(InputError, match="refused"):
        trusted.unpickle(path, name, trusted.reader(a))
    assert not marker.exists()


def test_a_file_from_another_home_is_refused(homes, tmp_path: Path) -> None:  # noqa: ANN001
    a, b, good, _ = homes
    with pytest.raises(InputError, match="refused"):
        trusted.reader(b)(good, NAME)
    # a home without a registry refuses too, and is not given one by the check
    fresh = Tracker(Paths(tmp_path / "fresh"))
    with pytest.raises(InputError, match="no registry yet"):
        trusted.reader(fresh)(good, NAME)
    assert not fresh.paths.mlflow_db.exists()


def test_a_run_checks_its_own_digest(homes, tmp_path: Path) -> None:  # noqa: ANN001
    a, _, good, run_id = homes
    marker = tmp_path / "ran"
    swapped = crafted(tmp_path / "swapped.pkl", marker)   # the registry's copy replaced after the save
    with pytest.raises(StorageError, match="does not match"):
        trusted.unpickle(swapped, NAME, trusted.reader(a, run_id))
    with pytest.raises(StorageError, match="none recorded"):   # a run that recorded nothing for that name
        trusted.reader(a, run_id)(good, "bundle.joblib")
    # legacy_ok: a registry download whose run predates digests is accepted (it came from the registry) ...
    assert trusted.reader(a, run_id, legacy_ok=True)(good, "bundle.joblib") == good.read_bytes()
    # ... but a run that recorded a digest is still held to it
    with pytest.raises(StorageError):
        trusted.unpickle(swapped, NAME, trusted.reader(a, run_id, legacy_ok=True))
    assert not marker.exists()


def test_record_without_a_run_records_nothing(tmp_path: Path) -> None:
    f = tmp_path / "f.pkl"
    f.write_bytes(b"x")
    assert trusted.record(f) is None


def test_paths_that_are_not_files_are_refused(homes, tmp_path: Path) -> None:  # noqa: ANN001
    a = homes[0]
    for path, why in ((tmp_path / "missing.pkl", "no such file"), (tmp_path, "not a regular file")):
        with pytest.raises(InputError, match=why):
            trusted.reader(a)(path, NAME)


def test_a_recorded_file_that_fails_to_load_is_one_line(homes, tmp_path: Path) -> None:  # noqa: ANN001
    """A recorded file from another kforge version (a class that moved) ends in one clear line."""
    a = homes[0]
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x05not really a pickle")
    with a.run("unit", "junk"):
        trusted.record(junk, NAME)
    with pytest.raises(InputError, match="cannot load") as err:
        trusted.unpickle(junk, NAME, trusted.reader(a))
    assert "\n" not in str(err.value)


def test_record_saved_makes_a_library_save_loadable_in_that_home_only(homes, tmp_path: Path) -> None:  # noqa: ANN001
    a, b, _, _ = homes
    f = tmp_path / "lib.pkl"
    f.write_bytes(pickle.dumps({"saved": "by a library call"}))
    with pytest.raises(InputError):
        trusted.reader(a)(f, NAME)
    assert trusted.record_saved(a, f, NAME) == trusted.sha256_of(f.read_bytes())
    assert trusted.unpickle(f, NAME, trusted.reader(a)) == {"saved": "by a library call"}
    with pytest.raises(InputError, match="refused"):
        trusted.reader(b)(f, NAME)
