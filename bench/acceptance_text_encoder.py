"""Issue 20 ablation, member level: the pretrained encoder against the hashed n-gram text model on
the same held-out rows (DPDK training rows before 2022, time-ordered: the first 70% train, the last 30%
test). Only rows whose embeddings are already cached in ``--home``'s warehouse are used (no
embedding is computed). Prints the members' AUCs and the ensemble's (100 trees, 2 folds) with and without
the encoder member, on the same rows. It is cheap once ``kforge --home H acceptance evaluate dpdk
--text-encoder`` has cached some texts.

    .venv/bin/python bench/acceptance_text_encoder.py --data ../shared/data --home /tmp/h1/home
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from kforge.acceptance.dataset import parse_date, time_split  # noqa: E402
from kforge.acceptance.evaluate import repo_frame  # noqa: E402
from kforge.acceptance.metrics import auc  # noqa: E402
from kforge.acceptance.model import AcceptanceEnsemble, text_pipeline  # noqa: E402
from kforge.acceptance.spec import COMMIT  # noqa: E402
from kforge.acceptance.text_encoder import encoder_member  # noqa: E402
from kforge.acceptance.train import usable_numeric  # noqa: E402
from kforge.config import Paths  # noqa: E402
from kforge.storage import Warehouse  # noqa: E402
from kforge.text.encoder import CACHE_TABLE, TextEncoder, content_key, use_encoder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--home", required=True)
    ap.add_argument("--n-estimators", type=int, default=100)
    args = ap.parse_args()
    paths = Paths.of(args.home)
    wh = Warehouse(paths.warehouse)
    enc = TextEncoder(paths, wh)
    frame, _ = repo_frame(Path(args.data), "dpdk")
    train = time_split(frame, parse_date("2022-01-01"), parse_date("2023-01-01"), 180).train.sort("t", maintain_order=True)
    with wh.reader() as con:
        cached = {k for (k,) in con.execute(f"select key from {CACHE_TABLE}").fetchall()}
    texts = train["text"].fill_null("").to_list()
    keep = np.array([content_key(t, enc.max_length) in cached for t in texts])
    rows = train.filter(pl.Series(keep))
    cut = int(rows.height * 0.7)
    tr, te = rows[:cut], rows[cut:]
    ytr, yte = tr["y"].cast(pl.Int64).to_numpy(), te["y"].cast(pl.Int64).to_numpy()
    ngram = text_pipeline().fit(tr["text"].fill_null("").to_list(), ytr)
    p_ngram = ngram.predict_proba(te["text"].fill_null("").to_list())[:, 1]
    e_tr, e_te = enc.embed(tr["text"].fill_null("").to_list()), enc.embed(te["text"].fill_null("").to_list())
    p_enc = encoder_member().fit(e_tr, ytr).predict_proba(e_te)[:, 1]

    use_encoder(enc).__enter__()   # the ensembles below embed through the process's encoder
    numeric, _ = usable_numeric(tr, COMMIT.numeric, 0.9)
    ens = {}
    for name, col in (("ensemble_today", None), ("ensemble_plus_encoder", "text")):
        m = AcceptanceEnsemble(numeric, list(COMMIT.categorical), "text", n_folds=2, n_estimators=args.n_estimators,
                               text_encoder=col).fit(tr, ytr)
        ens[name] = round(auc(yte, m.predict_proba(te)), 4)

    def rank(p: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(p)) / len(p)

    print(json.dumps({"rows_cached": int(keep.sum()), "train_rows": tr.height, "test_rows": te.height,
                      "test_positives": int(yte.sum()), "computed_embeddings": enc.computed,
                      "auc_ngram_text": round(auc(yte, p_ngram), 4), "auc_encoder": round(auc(yte, p_enc), 4),
                      "auc_rank_mean_both": round(auc(yte, rank(p_ngram) + rank(p_enc)), 4),
                      "auc_lines_added": round(auc(yte, te["la"].cast(pl.Float64).to_numpy()), 4),
                      "n_estimators": args.n_estimators, **ens}))


if __name__ == "__main__":
    main()
