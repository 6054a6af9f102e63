"""Dagster asset definitions, one module (or package) per asset group; each exposes ``defs``."""
