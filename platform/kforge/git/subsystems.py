"""Map file paths to subsystems with an ordered, configurable rule set (see rules/subsystems.json)."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kforge.errors import InputError

DEFAULT_RULES = Path(__file__).with_name("rules") / "subsystems.json"


@dataclass(frozen=True)
class SubsystemRules:
    rules: tuple[tuple[re.Pattern[str], str], ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> "SubsystemRules":
        src = Path(path) if path else DEFAULT_RULES
        try:
            spec = json.loads(src.read_text())
            rules = tuple((re.compile(r["pattern"]), str(r["subsystem"])) for r in spec["rules"])
        except FileNotFoundError:
            raise InputError(f"subsystem rules file not found: {src}") from None
        except (json.JSONDecodeError, KeyError, TypeError, re.error) as exc:
            raise InputError(
                f"subsystem rules file {src} is invalid ({exc}); expected "
                '{"rules": [{"pattern": REGEX, "subsystem": "name/{1}"}, ...]}'
            ) from None
        if not rules:
            raise InputError(f"subsystem rules file {src} has no rules")
        return cls(rules)

    def of(self, path: str) -> str:
        for pattern, template in self.rules:
            m = pattern.search(path)
            if m:
                out = template
                for i, g in enumerate(m.groups(), start=1):
                    out = out.replace(f"{{{i}}}", g or "")
                return out
        return "other"

    def column(self, paths: pl.Series) -> pl.Series:
        """Vectorised over unique paths: one regex pass per distinct path."""
        uniq = paths.unique().drop_nulls()
        mapping = {p: self.of(p) for p in uniq.to_list()}
        return paths.replace_strict(mapping, default="other", return_dtype=pl.String).alias("subsystem")
