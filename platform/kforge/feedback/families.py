"""Registers each family's feedback schema. Families add theirs in ``kforge/<family>/feedback.py``
and import it here (one line per family)."""

import importlib

for _family in ("acceptance", "healing", "mixins", "generation", "telemetry"):
    try:
        importlib.import_module(f"kforge.{_family}.feedback")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"kforge.{_family}", f"kforge.{_family}.feedback"):
            raise
