"""MLflow tracking and registry: runs, model versions, champion/challenger aliases, and the one
release path every model goes through (:mod:`kforge.registry.release`)."""

from kforge.registry.gates import Check, GateSpec, ModelSpec
from kforge.registry.release import Candidate, ReleaseResult, Scored, release
from kforge.registry.tracking import Tracker, data_version

__all__ = ["Tracker", "data_version", "Check", "GateSpec", "ModelSpec", "Candidate",
           "ReleaseResult", "Scored", "release"]
