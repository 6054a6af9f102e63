"""Feedback: observed outcomes entering append-only tables, validated row by row.

Each model family declares a :class:`FeedbackSchema` (see ``families.py``); ``kforge feedback add``
and ``kforge feedback import`` validate every row and write all of them in one transaction or
none (bad rows are reported with their line number and reason).
"""

from kforge.feedback.store import (
    FeedbackSchema,
    Field,
    add_feedback,
    feedback_since,
    import_feedback,
    register_schema,
    schemas,
)

__all__ = ["FeedbackSchema", "Field", "add_feedback", "feedback_since", "import_feedback", "register_schema", "schemas"]
