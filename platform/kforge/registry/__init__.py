"""MLflow tracking and registry: runs, model versions, champion/challenger aliases."""

from kforge.registry.tracking import Tracker, data_version
from kforge.registry.aliases import GateDecision

__all__ = ["Tracker", "GateDecision", "data_version"]
