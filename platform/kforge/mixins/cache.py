"""Prediction cache keyed by model version (sqlite under ``<home>/cache/mixins``).

Entries are looked up with the *current* champion version, so a promotion makes every older
entry unreachable at once; :meth:`PredictionCache.invalidate` also deletes them (the model asset
calls it after a promotion).
"""

import json
import sqlite3
from pathlib import Path
from typing import Any

from kforge.config import Paths


class PredictionCache:
    def __init__(self, paths: Paths) -> None:
        self.path = Path(paths.models_cache) / "mixins" / "predictions.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._con.execute("pragma journal_mode=wal")      # readers never block the writer
        self._con.execute("pragma synchronous=normal")    # a lost cache entry is recomputed, not data loss
        self._con.execute("create table if not exists predictions (version integer, key text, value text, "
                          "primary key (version, key))")
        self._con.commit()

    def get(self, version: int, key: str) -> Any | None:
        row = self._con.execute("select value from predictions where version = ? and key = ?", (version, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, version: int, key: str, value: Any) -> None:
        self._con.execute("insert or replace into predictions values (?, ?, ?)", (version, key, json.dumps(value)))
        self._con.commit()

    def invalidate(self, keep_version: int | None = None) -> int:
        """Delete entries of every version but ``keep_version``; returns how many went."""
        cur = self._con.execute("delete from predictions where version is not ?", (keep_version,))
        self._con.commit()
        return cur.rowcount

    def size(self, version: int | None = None) -> int:
        if version is None:
            return int(self._con.execute("select count(*) from predictions").fetchone()[0])
        return int(self._con.execute("select count(*) from predictions where version = ?", (version,)).fetchone()[0])

    def close(self) -> None:
        self._con.close()
