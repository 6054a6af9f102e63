"""Everything inference needs, in one directory (logged to MLflow as the ``bundle`` artifact):
``level1.pkl``, ``retrieval.pkl``, ``confidence.pkl``, ``backbone/`` and ``adapters/<family>/``."""

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kforge.errors import InputError
from kforge.generation.backbones import Backbone, ScratchBackbone, SmolBackbone
from kforge.generation.level1 import Level1Model
from kforge.generation.retrieval import RetrievalIndex


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
    def load(cls, directory: Path, device: str = "cpu") -> "Bundle":
        directory = Path(directory)
        if not (directory / "meta.json").exists():
            raise InputError(f"{directory} is not a generation bundle (no meta.json)")
        meta = json.loads((directory / "meta.json").read_text())
        objs = {}
        for name in ("level1", "retrieval", "confidence"):
            with open(directory / f"{name}.pkl", "rb") as fh:
                objs[name] = pickle.load(fh)  # noqa: S301 - our own artifact
        if meta.get("backbone") == "smollm2":
            backbone: Backbone = SmolBackbone.load_base(device)
        else:
            backbone = ScratchBackbone.load(directory / "backbone", device)
        adapters = directory / "adapters"
        return cls(objs["level1"], objs["retrieval"], backbone, objs["confidence"], meta,
                   adapters if adapters.exists() else None)
