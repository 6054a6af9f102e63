"""The families' feedback schemas: each family declares ``SCHEMA`` in ``kforge/<family>/feedback.py``
and is named here once. Reading them has no side effects on import of any family module."""

import importlib

from kforge.feedback.store import FeedbackSchema

FAMILIES = ("acceptance", "healing", "mixins", "generation", "telemetry")


def family_schemas() -> dict[str, FeedbackSchema]:
    out = {}
    for family in FAMILIES:
        schema = importlib.import_module(f"kforge.{family}.feedback").SCHEMA
        out[schema.family] = schema
    return out
