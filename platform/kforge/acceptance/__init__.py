"""Acceptance models: commit survival (later fixed/reverted) and patch e-mail merge prediction."""
