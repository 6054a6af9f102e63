"""Numeric descriptors of text inputs, for drift monitoring of the families whose model inputs
are text (healing: crash logs and tracebacks; generation: diffs). The same function describes the
training inputs (the reference) and the served inputs, so their PSI is comparable.

Example::

    text_descriptors(["Traceback (most recent call last):\\n  File \\"a.py\\", line 1 ..."])
    diff_descriptors([diff_text])      # n_files, n_hunks, lines_added, lines_removed, n_chars
"""

import re
from collections.abc import Sequence

import polars as pl

_FRAME = re.compile(r'^\s*(File "|\[<|\? |[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+|#\d+ )', re.M)
_HEX = re.compile(r"0x[0-9a-fA-F]+")


def text_descriptors(texts: Sequence[str]) -> pl.DataFrame:
    """n_chars, n_lines, n_frame_lines (stack-frame-like lines), n_hex (0x... tokens), upper_share."""
    rows = []
    for t in texts:
        t = t or ""
        letters = sum(ch.isalpha() for ch in t)
        rows.append({"n_chars": len(t), "n_lines": t.count("\n") + (1 if t else 0),
                     "n_frame_lines": len(_FRAME.findall(t)), "n_hex": len(_HEX.findall(t)),
                     "upper_share": sum(ch.isupper() for ch in t) / letters if letters else 0.0})
    return pl.DataFrame(rows, schema={"n_chars": pl.Int64, "n_lines": pl.Int64, "n_frame_lines": pl.Int64,
                                      "n_hex": pl.Int64, "upper_share": pl.Float64})


def diff_descriptors(diffs: Sequence[str]) -> pl.DataFrame:
    """n_files, n_hunks, lines_added, lines_removed, n_chars of unified diffs."""
    rows = []
    for d in diffs:
        d = d or ""
        lines = d.splitlines()
        files = sum(1 for ln in lines if ln.startswith("diff --git ")) or sum(1 for ln in lines if ln.startswith("+++ "))
        rows.append({"n_files": files, "n_hunks": sum(1 for ln in lines if ln.startswith("@@")),
                     "lines_added": sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++")),
                     "lines_removed": sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---")),
                     "n_chars": len(d)})
    return pl.DataFrame(rows, schema={"n_files": pl.Int64, "n_hunks": pl.Int64, "lines_added": pl.Int64,
                                      "lines_removed": pl.Int64, "n_chars": pl.Int64})


def error_descriptors(rows: Sequence[dict]) -> pl.DataFrame:
    """:func:`text_descriptors` of healing inputs (each row has a ``log`` or a ``traceback``)."""
    return text_descriptors([str(r.get("log") or r.get("traceback") or "") for r in rows])
