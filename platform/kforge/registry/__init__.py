"""MLflow tracking and registry: runs, model versions, champion/challenger aliases."""

from kforge.registry.aliases import GateDecision
from kforge.registry.tracking import Tracker, data_version

__all__ = ["Tracker", "GateDecision", "data_version"]
