"""Held-out metrics, baselines and plots for a binary acceptance model."""

from pathlib import Path

import numpy as np
import polars as pl


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float, prefix: str = "test_") -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    out = {"n": float(len(y)), "positives": float(y.sum()), "positive_rate": float(y.mean())}
    if len(np.unique(y)) > 1:
        out |= {"roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p))}
    out |= {"f1": float(f1_score(y, p >= threshold, zero_division=0)), "brier": float(brier_score_loss(y, p)),
            "ece": expected_calibration_error(y, p), "threshold": float(threshold)}
    return {prefix + k: v for k, v in out.items()}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) > 1 else float("nan")


def per_group(test: pl.DataFrame, y: np.ndarray, p: np.ndarray, group: str, min_rows: int = 30) -> pl.DataFrame:
    df = pl.DataFrame({"g": test[group].cast(pl.String).fill_null("none"), "y": y, "p": p})
    rows = []
    for g, part in df.group_by("g"):
        yy, pp = part["y"].to_numpy(), part["p"].to_numpy()
        if len(yy) >= min_rows and len(np.unique(yy)) > 1:
            rows.append({group: g[0], "n": len(yy), "positive_rate": float(yy.mean()), "roc_auc": auc(yy, pp)})
    schema = {group: pl.String, "n": pl.Int64, "positive_rate": pl.Float64, "roc_auc": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("n", descending=True)


def fit_baselines(train: pl.DataFrame, y: np.ndarray, test: pl.DataFrame, numeric: list[str],
                  lines_added: str) -> dict[str, np.ndarray]:
    """Scores of the named simple baselines on ``test`` (fit on ``train`` only):
    ``lines_added`` (LApredict: logistic regression on log lines added) and ``plain_lr``
    (logistic regression on the same numeric features, log-scaled and standardised)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def mat(df: pl.DataFrame, cols: list[str]) -> np.ndarray:
        x = df.select([pl.col(c).cast(pl.Float64).fill_null(0.0) for c in cols]).to_numpy()
        return np.sign(x) * np.log1p(np.abs(x))

    la = LogisticRegression(max_iter=1000).fit(mat(train, [lines_added]), y)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(mat(train, numeric), y)
    return {"lines_added": la.predict_proba(mat(test, [lines_added]))[:, 1],
            "plain_lr": lr.predict_proba(mat(test, numeric))[:, 1]}


def plots(y: np.ndarray, scores: dict[str, np.ndarray], out_dir: Path) -> dict[str, Path]:
    """ROC, PR and calibration plots (PNG) of the model and the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (held-out)")
    ax.legend(fontsize=7)
    paths["roc"] = out_dir / "roc.png"
    fig.tight_layout(); fig.savefig(paths["roc"], dpi=80); plt.close(fig)  # noqa: E702
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, p in scores.items():
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=name)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (held-out)")
    ax.legend(fontsize=7)
    paths["pr"] = out_dir / "pr.png"
    fig.tight_layout(); fig.savefig(paths["pr"], dpi=80); plt.close(fig)  # noqa: E702
    fig, ax = plt.subplots(figsize=(5, 4))
    p = scores["model"]
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(mean, frac, "o-", label="model")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title="Calibration (held-out)")
    paths["calibration"] = out_dir / "calibration.png"
    fig.tight_layout(); fig.savefig(paths["calibration"], dpi=80); plt.close(fig)  # noqa: E702
    return paths
