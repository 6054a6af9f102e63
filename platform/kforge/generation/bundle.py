"""Everything inference needs, in one directory (logged to MLflow as the ``bundle`` artifact):
``level1.pkl``, ``retrieval.pkl``, ``confidence.pkl``, ``backbone/`` and ``adapters/<family>/``.

The pickles are unpickled only after their sha256 matches the one that the release path recorded
(:func:`record_pickles`, called inside the MLflow run that logs the bundle)."""

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kforge.errors import InputError
from kforge.generation.backbones import Backbone, ScratchBackbone, SmolBackbone
from kforge.generation.level1 import Level1Model
from kforge.generation.retrieval import RetrievalIndex
from kforge.registry.trusted import Reader, loads, record

PICKLED = ("level1", "retrieval", "confidence")   # <name>.pkl, each checked by its recorded sha256


@dataclass
class Bundle:
    level1: Level1Model
    index: RetrievalIndex
    backbone: Backbone
    confidence: Any = None  # isotonic: mean token log-prob -> P(acceptable)
    meta: dict[str, Any] = field(default_factory=dict)
    adapters_dir: Path | None = None

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, obj in (("level1.pkl", self.level1), ("retrieval.pkl", self.index), ("confidence.pkl", self.confidence)):
            with open(directory / name, "wb") as fh:
                pickle.dump(obj, fh)
        if isinstance(self.backbone, ScratchBackbone):
            self.backbone.save(directory / "backbone")
        (directory / "meta.json").write_text(json.dumps({**self.meta, "backbone": self.backbone.kind}, indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path, device: str = "cpu", *, read: Reader) -> "Bundle":
        """The bundle in ``directory``. ``read`` checks every ``*.pkl`` against the sha256 recorded in the
        registry before any of them is unpickled (see :mod:`kforge.registry.trusted`). The backbone is
        read with ``torch.load(weights_only=True)`` and the adapters as safetensors."""
        directory = Path(directory)
        if not (directory / "meta.json").is_file():
            raise InputError(f"{directory} is not a generation bundle (no meta.json)")
        try:
            meta = json.loads((directory / "meta.json").read_text())
        except (ValueError, OSError) as exc:
            raise InputError(f"{directory}/meta.json is not readable JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise InputError(f"{directory}/meta.json is not a generation bundle's meta (not an object)")
        checked = {name: read(directory / f"{name}.pkl", f"{name}.pkl") for name in PICKLED}  # all, before any load
        objs = {name: loads(data, directory / f"{name}.pkl", f"{name}.pkl") for name, data in checked.items()}
        if meta.get("backbone") == "smollm2":
            backbone: Backbone = SmolBackbone.load_base(device)
        else:
            try:
                backbone = ScratchBackbone.load(directory / "backbone", device)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - a corrupt or foreign backbone: one line, no traceback
                first = str(exc).splitlines()[0][:200] if str(exc) else ""
                raise InputError(f"{directory}/backbone is not a loadable scratch backbone "
                                 f"({type(exc).__name__}: {first})") from None
        adapters = directory / "adapters"
        return cls(objs["level1"], objs["retrieval"], backbone, objs["confidence"], meta,
                   adapters if adapters.exists() else None)


def record_pickles(directory: Path) -> dict[str, str | None]:
    """Record the sha256 of the bundle's pickles on the active MLflow run (see :mod:`kforge.registry.trusted`)."""
    return {name: record(Path(directory) / f"{name}.pkl", f"{name}.pkl") for name in PICKLED}
