"""Feedback family ``healing``: labelled errors and fix outcomes.

Two kinds of row share the table ``feedback_healing``:

* ``kind=label``: an error (``log`` or ``traceback``) with one label value
  (``label``/``value``, e.g. ``label=crash_class value=kasan-use-after-free``);
* ``kind=fix``: a fix outcome: ``error_class`` (rule id or exception type), ``strategy`` and
  ``success`` (true/false), optionally the ``error_id`` it was applied to.

The ``log`` and ``traceback`` texts are anonymised before they are stored (e-mails, user names in
paths, addresses, hosts, tokens: :mod:`kforge.healing.anonymize`); ``anonymized`` records it.

Example: ``kforge feedback add healing kind=fix error_class=py-keyerror strategy=dict-get-default success=true``
"""

from typing import Any

from kforge.errors import InputError
from kforge.feedback import FeedbackSchema, Field


def _check(row: dict[str, Any], _warehouse: Any) -> None:
    if row["kind"] == "label":
        if not (row.get("log") or row.get("traceback")):
            raise InputError("a label row needs 'log' (kernel console log) or 'traceback' (Python)")
        if row.get("log") and row.get("traceback"):
            raise InputError("give either 'log' or 'traceback', not both")
        if not row.get("label") or not row.get("value"):
            raise InputError("a label row needs 'label' (the label field, e.g. crash_class) and 'value'")
    else:
        missing = [k for k in ("error_class", "strategy") if not row.get(k)]
        if missing or row.get("success") is None:
            raise InputError(f"a fix row needs error_class, strategy and success (missing: {', '.join(missing or ['success'])})")


SCHEMA = FeedbackSchema(
    family="healing",
    doc="labelled errors (kind=label) and fix outcomes (kind=fix)",
    fields=(
        Field("kind", choices=("label", "fix"), doc="label: an error with a label; fix: a fix outcome"),
        Field("error_id", required=False, doc="id of the error (optional)"),
        Field("log", required=False, doc="kernel console log (label rows; anonymised before it is stored)", text=True),
        Field("traceback", required=False, doc="Python traceback (label rows; anonymised before it is stored)", text=True),
        Field("label", required=False, doc="label field, e.g. crash_class, label_root_cause"),
        Field("value", required=False, doc="the label's value"),
        Field("error_class", required=False, doc="rule id or exception type (fix rows)"),
        Field("strategy", required=False, doc="fix strategy id (fix rows)"),
        Field("success", type="bool", required=False, doc="did the fix work (fix rows)"),
    ),
    check=_check,
)
