"""No code from outside the registry runs (issue 18, 1a): each loader of a user-supplied model file
(``healing --model``, ``generate --bundle``, ``train generation --checkpoint-dir``) and the mixins
serving cache gets hostile variants: a crafted pickle whose ``__reduce__`` writes a marker file, a model
that was changed after it was saved, a truncated one, one from another home, and a torch checkpoint
that carries a pickled object. Each is refused with one ``kforge: error:`` line (exit 2), and the marker
never appears. A model that kforge saved still loads and answers."""

import json
import pickle
import sys
from pathlib import Path

import pytest
import torch
from kforge.cli.main import main
from kforge.config import Paths
from kforge.errors import InputError, StorageError
from kforge.registry import Tracker, trusted

GEN_TESTS = Path(__file__).resolve().parents[1] / "unit" / "generation"
TB = ("Traceback (most recent call last):\n  File \"a.py\", line 3, in load\n    row['qty']\nKeyError: 'qty'\n")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _refused(capsys: pytest.CaptureFixture[str], rc: int, *words: str) -> str:
    """Exit 2 and exactly one ``kforge: error:`` line, the last thing on stderr (progress lines may precede it)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, err
    errors = [ln for ln in lines if ln.startswith("kforge: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err
    assert all(w in errors[0] for w in words), errors[0]
    return errors[0]


def _variants(good: bytes, tmp: Path, marker: Path) -> dict[str, Path]:
    """Hostile or broken stand-ins for a model file that kforge recorded (``good`` are its bytes)."""
    i = len(good) // 2
    out = {"crafted": pickle.dumps(_Payload(marker)),
           "tampered": good[:i] + pickle.dumps(_Payload(marker)),    # a recorded model, its tail replaced
           "flipped": good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1:],
           "truncated": good[: len(good) // 3],
           "empty": b""}
    paths = {}
    for name, data in out.items():
        paths[name] = tmp / name / "healing_model.pkl"
        paths[name].parent.mkdir(parents=True)
        paths[name].write_bytes(data)
    return paths


# -- healing classify|explain --model ----------------------------------------------------------------

@pytest.fixture(scope="module")
def healing(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Home ``a`` holds a healing model saved through the release path's save (its digest recorded on
    the run); home ``b`` has a registry with a model of its own."""
    from kforge.healing.corpus import load_programs, run_corpus
    from kforge.healing.datasets import CORPUS_LABELS
    from kforge.healing.model import train_bundle
    from kforge.healing.pyfunc import BUNDLE_FILE, save_pyfunc

    root = tmp_path_factory.mktemp("healing")
    rows = [{**r, "group": r["program"]} for r in run_corpus(load_programs()[:24])]
    model = train_bundle({"python": (rows, CORPUS_LABELS[:1], "group")}, kinds=("linear",))
    import mlflow

    tracker = Tracker(Paths(root / "a"))
    with tracker.run("healing", "save") as run:   # what the release path does around its save
        save_pyfunc(model, model.save(root / "work" / BUNDLE_FILE), root / "pyfunc")
        mlflow.log_artifacts(str(root / "pyfunc"), "model")
    tracker.promote("kforge-healing", tracker.register(run.info.run_id, "model", "kforge-healing"), "test")
    model.models["python"][CORPUS_LABELS[0]].abstain_threshold += 0.01   # home b trains a model of its own
    with Tracker(Paths(root / "b")).run("healing", "save"):
        other = trusted.record(model.save(root / "b-work" / BUNDLE_FILE), BUNDLE_FILE)
    assert other is not None
    model.models["python"][CORPUS_LABELS[0]].abstain_threshold += 0.01   # saved by library code into home a
    model.save(root / "lib" / "m.pkl", tracker=Tracker(Paths(root / "a")))
    inp = root / "in.jsonl"
    inp.write_text(json.dumps({"id": "e1", "traceback": TB}) + "\n")
    return root, root / "pyfunc" / "artifacts" / BUNDLE_FILE, root / "b-work" / BUNDLE_FILE, inp


def test_a_model_kforge_saved_classifies(healing, tmp_path: Path) -> None:  # noqa: ANN001
    root, good, _, inp = healing
    copy = tmp_path / "downloaded.pkl"          # a copy (e.g. downloaded from the registry) is the same artifact
    copy.write_bytes(good.read_bytes())
    for path in (good, copy, root / "lib" / "m.pkl"):
        out = tmp_path / f"{path.stem}.jsonl"
        assert main(["--home", str(root / "a"), "healing", "classify", "--input", str(inp), "--output", str(out),
                     "--model", str(path)]) == 0
        row = json.loads(out.read_text())
        assert row["id"] == "e1" and row["pred_label_root_cause"] and row["rule_id"] == "py-keyerror"
    tb = tmp_path / "tb.txt"
    tb.write_text(TB)
    assert main(["--home", str(root / "a"), "healing", "explain", str(tb), "--model", str(good)]) == 0


@pytest.mark.parametrize("variant", ["crafted", "tampered", "flipped", "truncated", "empty"])
def test_healing_refuses_unrecorded_models(healing, tmp_path: Path, capsys, variant: str) -> None:  # noqa: ANN001
    root, good, _, inp = healing
    marker = tmp_path / "ran"
    path = _variants(good.read_bytes(), tmp_path, marker)[variant]
    rc = main(["--home", str(root / "a"), "healing", "classify", "--input", str(inp),
               "--output", str(tmp_path / "out.jsonl"), "--model", str(path)])
    _refused(capsys, rc, "refused", str(path))
    assert not marker.exists() and not (tmp_path / "out.jsonl").exists()
    tb = tmp_path / "tb.txt"
    tb.write_text(TB)
    _refused(capsys, main(["--home", str(root / "a"), "healing", "explain", str(tb), "--model", str(path)]), "refused")
    assert not marker.exists()


def test_healing_refuses_a_model_from_another_home(healing, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    root, good, other, inp = healing
    out = str(tmp_path / "out.jsonl")
    # b's own model in home a; and a's model in a home with no registry at all
    _refused(capsys, main(["--home", str(root / "a"), "healing", "classify", "--input", str(inp), "--output", out,
                           "--model", str(other)]), "refused", "sha256")
    _refused(capsys, main(["--home", str(tmp_path / "fresh"), "healing", "classify", "--input", str(inp),
                           "--output", out, "--model", str(good)]), "refused", "no registry yet")
    assert not Paths(tmp_path / "fresh").mlflow_db.exists()


def test_the_champion_is_checked_against_its_run(healing, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Without --model the champion is served; a registry copy replaced after the save is refused."""
    root, good, _, inp = healing
    home = root / "a"
    out = tmp_path / "out.jsonl"
    assert main(["--home", str(home), "healing", "classify", "--input", str(inp), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["rule_id"] == "py-keyerror"
    stored = [p for p in Paths(home).mlartifacts.rglob("healing_model.pkl") if p.read_bytes() == good.read_bytes()]
    assert stored
    marker = tmp_path / "ran"
    try:
        for p in stored:
            p.write_bytes(pickle.dumps(_Payload(marker)))
        capsys.readouterr()
        rc = main(["--home", str(home), "healing", "classify", "--input", str(inp), "--output", str(out)])
        _refused(capsys, rc, "does not match the sha256 recorded")
    finally:
        for p in stored:
            p.write_bytes(good.read_bytes())
    assert not marker.exists()


def test_healing_refuses_paths_that_are_not_model_files(healing, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    root, _, _, inp = healing
    for path, why in ((tmp_path / "nope.pkl", "no such model file"), (tmp_path, "not a regular file")):
        _refused(capsys, main(["--home", str(root / "a"), "healing", "classify", "--input", str(inp),
                               "--output", str(tmp_path / "o.jsonl"), "--model", str(path)]), why)


# -- generate message|patch --bundle -------------------------------------------------------------------

@pytest.fixture(scope="module")
def gen_bundle(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A small real bundle whose pickles were recorded in home ``a``'s registry the way the LM's release
    save records them, and a diff to draft a message for."""
    sys.path.insert(0, str(GEN_TESTS))
    from gen_synthetic import make_rows
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.bundle import Bundle, record_pickles
    from kforge.generation.corpus import build_corpus, split_frames
    from kforge.generation.level1 import Level1Config, Level1Model
    from kforge.generation.lm import TinyLMConfig
    from kforge.generation.retrieval import RetrievalIndex

    root = tmp_path_factory.mktemp("generation")
    corpus, _ = build_corpus(make_rows(120), val_frac=0.15, test_frac=0.15)
    parts = split_frames(corpus)
    level1 = Level1Model(Level1Config(n_estimators=3, n_jobs=1)).fit(parts["train"], parts["val"])
    texts = (parts["train"]["subject"] + "\n" + parts["train"]["diff"]).to_list()
    bb = ScratchBackbone.create(texts, TinyLMConfig(vocab_size=300, d_model=16, n_layers=1, n_heads=2, max_len=128,
                                                    dropout=0.0), seed=1)
    bundle = Bundle(level1, RetrievalIndex().fit(parts["train"]), bb, None, {}).save(root / "bundle")
    with Tracker(Paths(root / "a")).run("generation", "save"):
        assert all(record_pickles(bundle).values())
    diff = root / "x.diff"
    diff.write_text(parts["test"]["diff"][0])
    return root, bundle, diff


def _copy_bundle(src: Path, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, dst))


def test_a_bundle_kforge_saved_drafts_a_message(gen_bundle, capsys) -> None:  # noqa: ANN001
    root, bundle, diff = gen_bundle
    assert main(["--home", str(root / "a"), "generate", "message", "--diff", str(diff), "--bundle", str(bundle),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"].startswith("From ")


@pytest.mark.parametrize(("variant", "pkl"), [("crafted", "level1.pkl"), ("crafted", "retrieval.pkl"),
                                              ("crafted", "confidence.pkl"), ("tampered", "level1.pkl"),
                                              ("flipped", "retrieval.pkl"), ("truncated", "level1.pkl"),
                                              ("empty", "confidence.pkl")])
def test_generate_refuses_unrecorded_pickles(gen_bundle, tmp_path: Path, capsys, variant: str, pkl: str) -> None:  # noqa: ANN001
    root, bundle, diff = gen_bundle
    marker = tmp_path / "ran"
    d = _copy_bundle(bundle, tmp_path / "b")
    (d / pkl).write_bytes(_variants((bundle / pkl).read_bytes(), tmp_path / "v", marker)[variant].read_bytes())
    _refused(capsys, main(["--home", str(root / "a"), "generate", "message", "--diff", str(diff), "--bundle", str(d)]),
             "refused", pkl)
    _refused(capsys, main(["--home", str(root / "a"), "generate", "patch", "--issue", "rx queue leaks",
                           "--bundle", str(d)]), "refused", pkl)
    assert not marker.exists()


def test_generate_refuses_a_bundle_from_another_home_and_broken_parts(gen_bundle, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    root, bundle, diff = gen_bundle
    other = tmp_path / "other"
    with Tracker(Paths(other)).run("generation", "unrelated"):
        pass
    capsys.readouterr()   # MLflow's own log lines from creating that registry
    _refused(capsys, main(["--home", str(other), "generate", "message", "--diff", str(diff), "--bundle", str(bundle)]),
             "refused", "level1.pkl")
    # the backbone is read as weights only: a pickled object in model.pt, or bad JSON meta, is one line too
    marker = tmp_path / "ran"
    d = _copy_bundle(bundle, tmp_path / "b")
    torch.save({"w": _Payload(marker)}, d / "backbone" / "model.pt")
    _refused(capsys, main(["--home", str(root / "a"), "generate", "message", "--diff", str(diff), "--bundle", str(d)]),
             "backbone")
    (d / "meta.json").write_text("{not json")
    _refused(capsys, main(["--home", str(root / "a"), "generate", "message", "--diff", str(diff), "--bundle", str(d)]),
             "meta.json")
    assert not marker.exists()


# -- train generation --checkpoint-dir ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_lm():  # noqa: ANN201
    sys.path.insert(0, str(GEN_TESTS))
    from gen_synthetic import make_rows
    from kforge.generation.backbones import ScratchBackbone
    from kforge.generation.lm import TinyLMConfig
    from kforge.generation.prompts import Example

    texts = (make_rows(40)["subject"]).to_list()

    def make(d_model: int = 16) -> ScratchBackbone:
        return ScratchBackbone.create(texts, TinyLMConfig(vocab_size=300, d_model=d_model, n_layers=1, n_heads=2,
                                                          max_len=64, dropout=0.0), seed=1)

    bb = make()
    examples = [Example(bb.encode(t)[:60] + [bb.eos_id], 2) for t in texts]
    return make, examples


def _cfg(ck: Path, steps: int = 4):  # noqa: ANN202
    from kforge.generation.train import TrainConfig

    return TrainConfig(steps=steps, batch_size=4, warmup=1, checkpoint_dir=str(ck), checkpoint_every=2)


def test_a_checkpoint_kforge_wrote_resumes(tiny_lm, tmp_path: Path) -> None:  # noqa: ANN001
    from kforge.generation.train import train

    make, examples = tiny_lm
    ck = tmp_path / "ck"
    train(make(), examples, _cfg(ck, steps=2))
    res = train(make(), examples, _cfg(ck, steps=4))
    assert res.resumed_from == 2 and res.steps_done == 4


@pytest.mark.parametrize("variant", ["object-in-zip", "raw-pickle", "truncated", "not-a-dict", "missing-keys",
                                     "other-model", "empty"])
def test_train_refuses_hostile_or_broken_checkpoints(tiny_lm, tmp_path: Path, variant: str) -> None:  # noqa: ANN001
    from kforge.generation.train import train

    make, examples = tiny_lm
    marker = tmp_path / "ran"
    ck = tmp_path / "ck"
    train(make(), examples, _cfg(ck, steps=2))
    last = ck / "last.pt"
    good = last.read_bytes()
    if variant == "object-in-zip":     # a real checkpoint with a pickled object riding along
        state = torch.load(last, weights_only=True)
        torch.save({**state, "history": _Payload(marker)}, last)
    elif variant == "raw-pickle":
        last.write_bytes(pickle.dumps(_Payload(marker)))
    elif variant == "truncated":
        last.write_bytes(good[: len(good) // 2])
    elif variant == "not-a-dict":
        torch.save([torch.zeros(2)], last)
    elif variant == "missing-keys":
        torch.save({"model": {}}, last)
    elif variant == "other-model":     # written for another model size
        train(make(d_model=32), examples, _cfg(tmp_path / "ck32", steps=2))
        last.write_bytes((tmp_path / "ck32" / "last.pt").read_bytes())
    else:
        last.write_bytes(b"")
    with pytest.raises(InputError, match="--no-resume") as err:
        train(make(), examples, _cfg(ck, steps=4))
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_train_generation_cli_refuses_a_crafted_checkpoint(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    sys.path.insert(0, str(GEN_TESTS))
    from gen_synthetic import make_rows

    f = tmp_path / "demo.diffs.parquet"
    make_rows(260).write_parquet(f)
    marker = tmp_path / "ran"
    ck = tmp_path / "ck"
    ck.mkdir()
    torch.save({"model": {}, "opt": _Payload(marker), "sched": {}, "step": 1, "history": []}, ck / "last.pt")
    rc = main(["--home", str(tmp_path / "h"), "train", "generation", "--diffs", str(f), "--no-register",
               "--checkpoint-dir", str(ck), "--steps", "2", "--d-model", "16", "--layers", "1", "--heads", "2",
               "--vocab", "300", "--max-len", "96", "--eval-rows", "4", "--calib-rows", "4", "--adapters", "0",
               "--batch-size", "2", "--level1-estimators", "2"])
    _refused(capsys, rc, "last.pt", "--no-resume")
    assert not marker.exists()


# -- the mixins serving cache ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixins_registry(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A registered ``kforge-mixins`` version whose bundle was saved with its digest recorded on the run
    (as the release path's save does), plus a legacy version registered before digests were recorded."""
    import joblib
    import mlflow
    from kforge.mixins.release import BUNDLE_FILE, MODEL_NAME

    root = tmp_path_factory.mktemp("mixins")
    tracker = Tracker(Paths(root / "h"))
    versions = {}
    for label, record in (("recorded", True), ("legacy", False)):
        model_dir = root / label / "model"
        (model_dir / "artifacts").mkdir(parents=True)
        joblib.dump({"predictor": label}, model_dir / "artifacts" / BUNDLE_FILE)
        with tracker.run("mixins", label) as run:
            if record:
                trusted.record(model_dir / "artifacts" / BUNDLE_FILE, BUNDLE_FILE)
            mlflow.log_artifacts(str(model_dir), "model")
        versions[label] = tracker.register(run.info.run_id, "model", MODEL_NAME)
    return tracker, versions


@pytest.fixture()
def mixins_home(mixins_registry):  # noqa: ANN001, ANN201
    """The registry above with an empty serving cache."""
    import shutil

    tracker, versions = mixins_registry
    shutil.rmtree(tracker.paths.models_cache / "mixins", ignore_errors=True)
    return tracker, versions


def _cache(tracker: Tracker, version: int) -> Path:
    from kforge.mixins.release import BUNDLE_FILE

    return tracker.paths.models_cache / "mixins" / f"v{version}" / BUNDLE_FILE


@pytest.mark.parametrize("variant", ["crafted", "tampered", "flipped", "truncated", "empty"])
def test_mixins_cache_is_checked_against_the_champion_it_claims(mixins_home, tmp_path: Path, variant: str) -> None:  # noqa: ANN001
    from kforge.mixins.service import load_predictor

    tracker, versions = mixins_home
    marker = tmp_path / "ran"
    v = versions["recorded"]
    assert load_predictor(tracker, v) == {"predictor": "recorded"}        # fills the cache
    cache = _cache(tracker, v)
    good = cache.read_bytes()
    cache.write_bytes(_variants(good, tmp_path / "v", marker)[variant].read_bytes())
    assert load_predictor(tracker, v) == {"predictor": "recorded"}        # downloaded again, the cache never unpickled
    assert not marker.exists() and cache.read_bytes() == good


def test_mixins_cache_that_matches_is_served_and_a_swapped_registry_copy_is_refused(
        mixins_home, tmp_path: Path) -> None:  # noqa: ANN001
    from kforge.mixins.service import load_predictor

    tracker, versions = mixins_home
    v = versions["recorded"]
    assert load_predictor(tracker, v) == {"predictor": "recorded"}
    good = _cache(tracker, v).read_bytes()
    stored = [p for p in tracker.paths.mlartifacts.rglob("bundle.joblib") if p.read_bytes() == good]
    assert stored                     # the registry's own file(s) for this version
    marker = tmp_path / "ran"
    try:
        for p in stored:              # replaced by a payload after the save
            p.write_bytes(pickle.dumps(_Payload(marker)))
        assert load_predictor(tracker, v) == {"predictor": "recorded"}    # the checked cache still serves
        _cache(tracker, v).unlink()
        with pytest.raises(StorageError, match="does not match"):         # the swapped registry copy is refused
            load_predictor(tracker, v)
    finally:
        for p in stored:
            p.write_bytes(good)
    assert not marker.exists()


def test_mixins_legacy_version_never_trusts_its_cache(mixins_home, tmp_path: Path) -> None:  # noqa: ANN001
    from kforge.mixins.service import load_predictor

    tracker, versions = mixins_home
    v = versions["legacy"]
    marker = tmp_path / "ran"
    cache = _cache(tracker, v)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(_Payload(marker)))
    assert load_predictor(tracker, v) == {"predictor": "legacy"}
    assert not marker.exists()
