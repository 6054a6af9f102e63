"""Held-out rows: stable group assignment and the digest that proves two scores share rows.

A group goes to the test side by a hash of its key, never by a random draw over the groups seen
so far, so new data (feedback, a new crawl) never moves a training group into test. The champion
and the challenger are compared on the rows named by one digest.
"""

import hashlib
from collections.abc import Iterable, Sequence


def _unit(key: str, salt: str) -> float:
    h = hashlib.sha256(f"{salt}\x00{key}".encode("utf-8", "surrogateescape")).hexdigest()
    return int(h[:13], 16) / float(16**13)


def in_test(key: object, share: float, salt: str = "kforge") -> bool:
    """Whether group ``key`` is held out: a pure function of the key, the share and the salt.

    >>> in_test("repo-a", 0.0)
    False
    >>> in_test("repo-a", 1.0)
    True
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"test share must be within [0, 1], got {share}")
    return _unit(str(key), salt) < share


def stable_group_split(groups: Sequence[object], share: float, salt: str = "kforge") -> tuple[list[int], list[int]]:
    """Row indices (train, test) for rows whose group keys are ``groups``; whole groups go to
    one side, by :func:`in_test`. No group ever moves from train to test as rows are added."""
    train, test = [], []
    memo: dict[str, bool] = {}
    for i, g in enumerate(groups):
        k = str(g)
        if k not in memo:
            memo[k] = in_test(k, share, salt)
        (test if memo[k] else train).append(i)
    return train, test


def rows_digest(keys: Iterable[object]) -> str:
    """A digest of the held-out row keys (order-insensitive; duplicates count), 16 hex chars."""
    ks = sorted(str(k) for k in keys)
    h = hashlib.sha256()
    for k in ks:
        h.update(k.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()[:16] if ks else "empty"
