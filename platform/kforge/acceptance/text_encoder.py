"""The pretrained sentence encoder as an acceptance ensemble member (issue 20; off by default).

``AcceptanceEnsemble(text_encoder="text")`` adds a member: a logistic regression on the
all-MiniLM-L6-v2 embeddings (:class:`kforge.text.TextEncoder`) of the row's own text (subject and
body; the seed's DistilBERT role). An embedding is a function of that text alone, so it cannot
leak labels or other rows. The encoder itself is never pickled with the model: a model that needs
it embeds through the process's encoder (:func:`kforge.text.current_encoder`, the one mechanism every
family uses), which the CLI and the release path point at the home's warehouse
(:func:`kforge.text.use_encoder`) so vectors are cached by content hash across runs.

Example::

    with use_encoder(TextEncoder(Paths.of(home), Warehouse(Paths.of(home).warehouse))):
        m = AcceptanceEnsemble(numeric, [], "text", text_encoder="text").fit(train, y)
"""

from typing import Any


def encoder_member() -> Any:
    """The member fit on the embeddings (unit-norm, 384 dimensions)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000))
