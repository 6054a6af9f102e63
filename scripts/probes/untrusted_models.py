"""Before/after probe for issue 18 part 1a: run each hostile variant against whichever kforge is on the path.
Usage: [PYTHONPATH=OLD_CHECKOUT/platform] python scripts/probes/untrusted_models.py OUT.json"""
import contextlib
import io
import json
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "unit" / "generation"))
from gen_synthetic import make_rows  # noqa: E402
from kforge.cli.main import main  # noqa: E402
from kforge.config import Paths  # noqa: E402
from kforge.registry import Tracker  # noqa: E402

try:
    from kforge.registry import trusted
except ImportError:
    trusted = None
root = Path(tempfile.mkdtemp(prefix="h1probe-"))
TB = "Traceback (most recent call last):\n  File \"a.py\", line 3, in load\n    row['qty']\nKeyError: 'qty'\n"
results = []


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def run(cls, variant, fn):
    marker = root / f"marker-{len(results)}"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = fn(marker)
            outcome = f"exit {rc}"
        except Exception as exc:  # noqa: BLE001
            outcome = f"traceback ({type(exc).__name__})"
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("kforge: error:")]
    results.append({"class": cls, "variant": variant, "outcome": outcome, "code_ran": marker.exists(),
                    "error_line": lines[-1][:140] if lines else ""})


# healing
from kforge.healing.corpus import load_programs, run_corpus  # noqa: E402
from kforge.healing.datasets import CORPUS_LABELS  # noqa: E402
from kforge.healing.model import train_bundle  # noqa: E402

rows = [{**r, "group": r["program"]} for r in run_corpus(load_programs()[:24])]
model = train_bundle({"python": (rows, CORPUS_LABELS[:1], "group")}, kinds=("linear",))
home = root / "home"
good = model.save(root / "good" / "healing_model.pkl")
with Tracker(Paths(home)).run("healing", "save"):
    if trusted:
        trusted.record(good, "healing_model.pkl")
model.models["python"][CORPUS_LABELS[0]].abstain_threshold += 0.01
elsewhere = model.save(root / "elsewhere" / "healing_model.pkl")
inp = root / "in.jsonl"
inp.write_text(json.dumps({"id": "e1", "traceback": TB}) + "\n")


def classify(path):
    return lambda m: main(["--home", str(home), "healing", "classify", "--input", str(inp), "--output",
                           str(root / "out.jsonl"), "--model", str(path)])


def write(name, data):
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


data = good.read_bytes()
half = len(data) // 2
for variant, mk in [
    ("crafted pickle (__reduce__ -> exec)", lambda m: write("h-crafted.pkl", pickle.dumps(Payload(m)))),
    ("saved model, tail replaced by a payload", lambda m: write("h-tamper.pkl", data[:half] + pickle.dumps(Payload(m)))),
    ("truncated saved model", lambda m: write("h-trunc.pkl", data[:half])),
    ("model made in another home", lambda m: elsewhere),
    ("a directory", lambda m: root),
]:
    run("healing --model", variant, lambda m, mk=mk: classify(mk(m))(m))
run("healing --model", "happy: the model kforge saved", lambda m: classify(good)(m))

# generation bundle
from kforge.generation.backbones import ScratchBackbone  # noqa: E402
from kforge.generation.bundle import Bundle  # noqa: E402
from kforge.generation.corpus import build_corpus, split_frames  # noqa: E402
from kforge.generation.level1 import Level1Config, Level1Model  # noqa: E402
from kforge.generation.lm import TinyLMConfig  # noqa: E402
from kforge.generation.retrieval import RetrievalIndex  # noqa: E402

corpus, _ = build_corpus(make_rows(120), val_frac=0.15, test_frac=0.15)
parts = split_frames(corpus)
l1 = Level1Model(Level1Config(n_estimators=3, n_jobs=1)).fit(parts["train"], parts["val"])
texts = (parts["train"]["subject"] + "\n" + parts["train"]["diff"]).to_list()
bb = ScratchBackbone.create(texts, TinyLMConfig(vocab_size=300, d_model=16, n_layers=1, n_heads=2, max_len=128,
                                                dropout=0.0), seed=1)
bdir = Bundle(l1, RetrievalIndex().fit(parts["train"]), bb, None, {}).save(root / "bundle")
with Tracker(Paths(home)).run("generation", "save"):
    if trusted:
        from kforge.generation.bundle import record_pickles
        record_pickles(bdir)
diff = write("x.diff", parts["test"]["diff"][0].encode())


def gen(d):
    return main(["--home", str(home), "generate", "message", "--diff", str(diff), "--bundle", str(d)])


def variant_bundle(name, pkl, data_fn):
    def fn(m):
        d = root / f"b-{name}"
        shutil.copytree(bdir, d)
        (d / pkl).write_bytes(data_fn(m, (bdir / pkl).read_bytes()))
        return gen(d)
    return fn


run("generate --bundle", "crafted level1.pkl", variant_bundle("c1", "level1.pkl", lambda m, d: pickle.dumps(Payload(m))))
run("generate --bundle", "crafted retrieval.pkl", variant_bundle("c2", "retrieval.pkl", lambda m, d: pickle.dumps(Payload(m))))
run("generate --bundle", "crafted confidence.pkl", variant_bundle("c3", "confidence.pkl", lambda m, d: pickle.dumps(Payload(m))))
run("generate --bundle", "truncated level1.pkl", variant_bundle("t1", "level1.pkl", lambda m, d: d[: len(d) // 2]))


def bb_payload(m):
    d = root / "b-bb"
    shutil.copytree(bdir, d)
    torch.save({"w": Payload(m)}, d / "backbone" / "model.pt")
    return gen(d)


run("generate --bundle", "pickled object in backbone/model.pt", bb_payload)
run("generate --bundle", "happy: the bundle kforge saved", lambda m: gen(bdir))

# checkpoints
from kforge.generation.prompts import Example  # noqa: E402
from kforge.generation.train import TrainConfig, train  # noqa: E402

small = make_rows(40)["subject"].to_list()


def tiny():
    return ScratchBackbone.create(small, TinyLMConfig(vocab_size=300, d_model=16, n_layers=1, n_heads=2, max_len=64,
                                                      dropout=0.0), seed=1)


ex = [Example(tiny().encode(t)[:60] + [tiny().eos_id], 2) for t in small[:20]]


def ckpt(kind):
    def fn(m):
        ck = root / f"ck-{kind}-{m.name}"
        train(tiny(), ex, TrainConfig(steps=2, batch_size=4, warmup=1, checkpoint_dir=str(ck)))
        last = ck / "last.pt"
        if kind == "object":
            st = torch.load(last, weights_only=True)
            torch.save({**st, "history": Payload(m)}, last)
        elif kind == "raw":
            last.write_bytes(pickle.dumps(Payload(m)))
        elif kind == "trunc":
            last.write_bytes(last.read_bytes()[:200])
        res = train(tiny(), ex, TrainConfig(steps=4, batch_size=4, warmup=1, checkpoint_dir=str(ck)))
        return f"0 (resumed from {res.resumed_from})"
    return fn


run("--checkpoint-dir", "pickled object inside a torch checkpoint", ckpt("object"))
run("--checkpoint-dir", "raw pickle as last.pt", ckpt("raw"))
run("--checkpoint-dir", "truncated last.pt", ckpt("trunc"))
run("--checkpoint-dir", "happy: kforge's own checkpoint", ckpt("good"))

# mixins cache
import joblib  # noqa: E402
import mlflow  # noqa: E402
from kforge.mixins.service import load_predictor  # noqa: E402

tracker = Tracker(Paths(home))
mdir = root / "mx" / "model"
(mdir / "artifacts").mkdir(parents=True)
joblib.dump({"predictor": "ok"}, mdir / "artifacts" / "bundle.joblib")
with tracker.run("mixins", "save") as r:
    if trusted:
        trusted.record(mdir / "artifacts" / "bundle.joblib", "bundle.joblib")
    mlflow.log_artifacts(str(mdir), "model")
v = tracker.register(r.info.run_id, "model", "kforge-mixins")


def cache(kind):
    def fn(m):
        c = Paths(home).models_cache / "mixins" / f"v{v}" / "bundle.joblib"
        c.parent.mkdir(parents=True, exist_ok=True)
        if kind == "crafted":
            c.write_bytes(pickle.dumps(Payload(m)))
        elif kind == "trunc":
            c.write_bytes((mdir / "artifacts" / "bundle.joblib").read_bytes()[:10])
        else:
            c.unlink(missing_ok=True)
        return f"0 ({load_predictor(tracker, v)})"
    return fn


run("mixins cache", "crafted joblib in the cache", cache("crafted"))
run("mixins cache", "truncated cache file", cache("trunc"))
run("mixins cache", "happy: empty cache, registry copy", cache("none"))

out = Path(sys.argv[1])
out.write_text(json.dumps(results, indent=1))
for r in results:
    print(f"{r['class']:18} | {r['variant']:42} | {r['outcome']:28} | code ran: {r['code_ran']} | {r['error_line'][:90]}")
