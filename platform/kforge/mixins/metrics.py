"""Held-out metrics for probability predictions."""

import numpy as np


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    out = {"n": float(len(y)), "positive_rate": float(y.mean()) if len(y) else float("nan"),
           "accuracy": float(((p >= 0.5).astype(int) == y).mean()) if len(y) else float("nan"),
           "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
           "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan")}
    out["roc_auc"] = float(roc_auc_score(y, p)) if len(set(y)) == 2 else float("nan")
    return out


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            rows.append({"bin": b, "n": int(sel.sum()), "mean_predicted": float(p[sel].mean()),
                         "observed_rate": float(np.asarray(y)[sel].mean())})
    return rows
