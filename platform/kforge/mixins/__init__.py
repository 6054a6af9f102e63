"""Mixin compatibility: real mixin classes, an exercise harness that observes outcomes, learners
on those outcomes, and check/validate/recommend predictions (no Dagster imports here)."""
