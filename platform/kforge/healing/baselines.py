"""Named simple baselines measured in the same run as the models.

* :func:`dozen_regexes`: twelve hand-written regexes on the first crash line of a kernel log
  (the issue's reference point, about 0.58 accuracy on ``crash_class``);
* :func:`exception_type_baseline`: the Python exception type's majority label in training;
* the plain TF-IDF + logistic regression baseline is ``classifiers.make_pipeline("tfidf_lr")``;
* ``CONSTANT_FIX_SUCCESS`` is the roadmap's old fix-success "model" (always 0.7).
"""

import re
from collections import Counter, defaultdict
from typing import Any

CONSTANT_FIX_SUCCESS = 0.7

DOZEN: list[tuple[str, str]] = [
    (r"KASAN: .*use-after-free", "kasan-use-after-free"),
    (r"KASAN: .*out-of-bounds", "kasan-out-of-bounds"),
    (r"KMSAN", "kmsan-uninit-value"),
    (r"general protection fault", "general-protection-fault"),
    (r"unable to handle kernel", "null-ptr-deref-or-page-fault"),
    (r"kernel BUG at", "kernel-bug-at"),
    (r"possible .*locking|lock", "lockdep-or-locking"),
    (r"rcu.*stall|soft lockup", "rcu-stall-or-soft-lockup"),
    (r"blocked for more than", "task-hung"),
    (r"memory leak", "memory-leak"),
    (r"WARNING:", "warning"),
    (r"Kernel panic", "panic"),
]
_DOZEN = [(re.compile(p), c) for p, c in DOZEN]


def dozen_regexes(log: str, default: str = "no-crash") -> str:
    """The first line any of the twelve regexes matches decides; nothing matched = ``default``."""
    for line in (log or "").splitlines():
        for rx, cls in _DOZEN:
            if rx.search(line):
                return cls
    return default


class ExceptionTypeBaseline:
    """Predict the most frequent training label of the parsed exception type."""

    def __init__(self) -> None:
        self.table: dict[str, str] = {}
        self.majority = ""

    def fit(self, exc_types: list[str], y: list[str]) -> "ExceptionTypeBaseline":
        by: dict[str, Counter[str]] = defaultdict(Counter)
        for t, v in zip(exc_types, y, strict=True):
            by[t][v] += 1
        self.table = {t: c.most_common(1)[0][0] for t, c in by.items()}
        self.majority = Counter(y).most_common(1)[0][0]
        return self

    def predict(self, exc_types: list[str]) -> list[Any]:
        return [self.table.get(t, self.majority) for t in exc_types]
