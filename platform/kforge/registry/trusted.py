"""Only kforge's own artifacts are ever unpickled: each pickled file is checked against the sha256
that kforge recorded in this home's registry when it saved the file.

When a model is saved through the release path, its MLflow run is active, and :func:`record` writes
the file's digest to that run as the tag ``kforge.sha256.<name>`` (``name`` is the artifact's
kind: ``healing_model.pkl``, ``level1.pkl``, ``bundle.joblib``, ...). The tracking store is
the place that a user-given file cannot forge. Every loader takes a :data:`Reader`, which returns
the file's bytes only after it has checked them. The bytes it checked are the bytes that get
unpickled, so the file cannot be swapped between the check and the load.

* :func:`reader` with ``tracker``: a user-given file (``--model``, ``--bundle``). Its digest must be
  one that some run in this home's registry recorded for ``name``. A crafted, tampered or truncated
  file, or a file from another home, is refused with one :class:`~kforge.errors.InputError` line,
  and nothing is unpickled.
* :func:`reader` with ``tracker`` and ``run_id``: a file that kforge itself downloaded from that run.
  It must match the digest the run recorded (otherwise :class:`~kforge.errors.StorageError`). With
  ``legacy_ok`` set, a run that recorded no digest (registered before digests existed) is accepted
  because the file came from the registry.
* :func:`registry_download`: no check. Use it only for a directory that kforge's release path has
  just downloaded from its own registry: a champion being re-scored, or a pyfunc model that MLflow is
  loading. No user-given path reaches it.

Example::

    with tracker.run("healing", "train"):          # what the release path does around save_model
        record(model.save(d / "healing_model.pkl"))
    data = reader(tracker)(Path(user_file), "healing_model.pkl")   # raises unless recorded
    model = unpickle(Path(user_file), "healing_model.pkl", reader(tracker))
"""

import hashlib
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kforge.errors import InputError, StorageError

TAG = "kforge.sha256."
Reader = Callable[[Path, str], bytes]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def record(path: str | Path, name: str | None = None) -> str | None:
    """Write ``path``'s sha256 to the active MLflow run as ``kforge.sha256.<name>`` (default: the
    file name) and return it. Does nothing and returns None when no run is active: the file then
    stays untrusted, so a later load refuses it (fails closed)."""
    import mlflow

    path = Path(path)
    run = mlflow.active_run()
    if run is None:
        return None
    digest = sha256_of(path.read_bytes())
    mlflow.set_tag(TAG + (name or path.name), digest)
    return digest


def record_saved(tracker: Any, path: str | Path, name: str | None = None, group: str = "saved-models") -> str:
    """Record a file that kforge saved outside the release path (a library call, a test) in ``tracker``'s
    registry. The digest goes on a run of its own in ``kforge/<group>``, so the file loads in that home."""
    path = Path(path)
    with tracker.run(group, f"saved {name or path.name}"):
        digest = record(path, name)
    assert digest is not None
    return digest


def recorded(tracker: Any, run_id: str, name: str) -> str | None:
    """The digest that run ``run_id`` recorded for ``name`` (None when it recorded none)."""
    run = tracker.client().get_run(run_id)
    return (run.data.tags or {}).get(TAG + name)


def _no_registry(tracker: Any) -> bool:
    """True for a home whose own sqlite registry does not exist yet. This is checked without creating it."""
    return tracker.tracking_uri == tracker.paths.tracking_uri() and not tracker.paths.mlflow_db.exists()


def _recorded_anywhere(tracker: Any, name: str, digest: str) -> bool:
    from mlflow.entities import ViewType

    client = tracker.client()
    exps = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not exps:
        return False
    runs = client.search_runs(exps, filter_string=f"tags.`{TAG}{name}` = '{digest}'",
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=1)
    return len(runs) > 0


def reader(tracker: Any, run_id: str | None = None, *, legacy_ok: bool = False) -> Reader:
    """A :data:`Reader` that checks a file against the digests recorded in ``tracker``'s registry
    (on ``run_id`` when given, else on any active run)."""

    def read(path: Path, name: str) -> bytes:
        path = Path(path)
        if run_id is None and _no_registry(tracker):
            raise InputError(f"{path}: refused: kforge unpickles only models that this home's registry recorded, and "
                             f"{tracker.paths.home} has no registry yet: train one here first")
        data = _read(path)
        digest = sha256_of(data)
        if run_id is not None:
            want = recorded(tracker, run_id, name)
            if want is None and legacy_ok:
                return data
            if want != digest:
                raise StorageError(f"{path}: {name} of run {run_id} does not match the sha256 recorded when kforge "
                                   f"saved it ({'none recorded' if want is None else want[:12]} != {digest[:12]}): "
                                   "the registry's copy was changed after it was saved; retrain it")
            return data
        if not _recorded_anywhere(tracker, name, digest):
            raise InputError(f"{path}: refused: sha256 {digest[:12]}... is not that of any {name} that kforge saved "
                             f"in this home's registry ({tracker.paths.home}); kforge unpickles only its own models "
                             "(a file that was changed, truncated or made elsewhere is refused)")
        return data

    return read


def registry_download(path: Path, name: str) -> bytes:
    """A file that kforge itself has just downloaded from its own registry (no user-given path):
    read it without a check."""
    return _read(Path(path))


def unpickle(path: str | Path, name: str, read: Reader, *, use_joblib: bool = False) -> Any:
    """Check ``path`` with ``read``, then unpickle the bytes it checked (see :func:`loads`)."""
    return loads(read(Path(path), name), path, name, use_joblib=use_joblib)


def loads(data: bytes, path: str | Path, name: str, *, use_joblib: bool = False) -> Any:
    """Unpickle ``data``, the bytes that a :data:`Reader` returned for ``path`` (with joblib when
    ``use_joblib``). A checked file that still fails to load was written by another kforge version."""
    try:
        if use_joblib:
            import joblib

            return joblib.load(io.BytesIO(data))
        return pickle.loads(data)  # noqa: S301 - a Reader checked these bytes against the recorded digest
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise InputError(f"{path}: a recorded {name} that this kforge cannot load ({type(exc).__name__}: {first}); "
                         "retrain it with this version") from None


__all__ = ["TAG", "Reader", "sha256_of", "record", "record_saved", "recorded", "reader", "registry_download", "unpickle", "loads"]
