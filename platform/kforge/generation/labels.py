"""Targets derived from a commit: subsystem prefix, change type, complexity bucket, diff facts.

The change type is read from the *message* (it is a target, never a feature); features for it
come from the diff or the issue text only.
"""

import re

from kforge.git.message import subject_prefix

CHANGE_TYPES = ("fix", "revert", "feature", "cleanup", "doc", "test", "build", "other")
COMPLEXITY = ("tiny", "small", "medium", "large")  # changed lines <=5, <=30, <=200, >200
_FIX = re.compile(r"\b(fix(es|ed)?|bug|crash|leak|overflow|null|deadlock|race|wrong|incorrect|missing|avoid|prevent|segfault)\b", re.I)
_FEATURE = re.compile(r"\b(add|adds|added|support|introduce|implement|enable|new|initial)\b", re.I)
_CLEANUP = re.compile(r"\b(remove|clean ?up|refactor|rename|unused|simplify|move|replace|rework|drop|use|convert|reduce)\b", re.I)
_DOC = re.compile(r"^(doc|docs|documentation|maintainers|mailmap)\b", re.I)
_TEST = re.compile(r"^(test|app/test|selftests?)\b", re.I)
_BUILD = re.compile(r"^(build|meson|ci|devtools|config|kconfig|makefile)\b", re.I)
_PATH = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)
_TRAILER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,40}:\s+\S.*$")


def change_type(subject: str, body: str = "") -> str:
    """Rule-based change type of a commit message (first matching rule wins)."""
    s = subject or ""
    prefix = subject_prefix(s).lower()
    if s.startswith("Revert ") or re.search(r"^revert\b", s, re.I):
        return "revert"
    if re.search(r"^\s*Fixes:", body or "", re.M | re.I) or _FIX.search(s.split(":", 1)[-1]):
        return "fix"
    if _DOC.match(prefix):
        return "doc"
    if _TEST.match(prefix):
        return "test"
    if _BUILD.match(prefix):
        return "build"
    summary = s.split(":", 1)[-1]
    if _FEATURE.search(summary):
        return "feature"
    if _CLEANUP.search(summary):
        return "cleanup"
    return "other"


def diff_paths(diff: str) -> list[str]:
    return [m.group(2) for m in _PATH.finditer(diff or "")]


def diff_lines(diff: str) -> tuple[int, int]:
    """(added, deleted) lines of a unified diff (file headers excluded)."""
    added = deleted = 0
    for line in (diff or "").splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            deleted += 1
    return added, deleted


def complexity(added: int, deleted: int) -> str:
    n = added + deleted
    return "tiny" if n <= 5 else "small" if n <= 30 else "medium" if n <= 200 else "large"


def family(prefix: str) -> str:
    """Subsystem family for LoRA adapters: ``net/mlx5`` -> ``net``; empty -> ``other``."""
    p = (prefix or "").strip().lower()
    return re.split(r"[/,: ]", p, maxsplit=1)[0] or "other" if p else "other"


def strip_trailers(body: str) -> str:
    """The body without its trailer lines (Signed-off-by, Fixes, Cc, ...): an issue-like text."""
    keep = [ln for ln in (body or "").splitlines() if not _TRAILER_LINE.match(ln.strip())]
    return "\n".join(keep).strip()


__all__ = ["CHANGE_TYPES", "COMPLEXITY", "change_type", "complexity", "diff_lines", "diff_paths", "family",
           "strip_trailers", "subject_prefix"]
