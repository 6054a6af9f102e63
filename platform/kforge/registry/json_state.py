"""JSON-state model directories: a pyfunc whose whole state is ``data/state.json`` (no pickle),
loaded through MLflow's ``loader_module``. Families keep their own model class; reading and
checking the state file is shared here."""

import json
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


def read_json_state(path: Path, kinds: tuple[str, ...], what: str) -> dict[str, Any]:
    """The JSON state of a model directory (or of the state file itself), whose ``kind`` must be
    one of ``kinds``; anything else raises ``ValueError`` naming ``what`` was expected."""
    if path.is_dir():
        path = path / "data" / STATE_FILE
    state = json.loads(path.read_text())
    if not isinstance(state, dict) or state.get("kind") not in kinds:
        raise ValueError(f"{path}: not a kforge {what} state")
    return state
