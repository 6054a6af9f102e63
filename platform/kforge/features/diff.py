"""Features of the diff itself: what kind of code a commit adds and removes.

Point in time by construction: a commit's diff is its own content, written before it entered the
tree. Counts come from polars string expressions over the whole column (no per-row Python):
the added and removed lines are extracted once, then each construct is counted in them.

Example::

    feats = diff_features(pl.read_parquet("../shared/data/kernel/dpdk.diffs.parquet"))
"""

import polars as pl

# Constructs that the JIT-defect literature and kernel review lore tie to later fixes.
RISKY = {
    "lock": r"\b\w*(lock|unlock|mutex|rwlock)\w*\b",
    "alloc": r"\b\w*(malloc|calloc|realloc|alloc)\w*\s*\(",
    "free": r"\b\w*free\w*\s*\(",
    "goto": r"\bgoto\b",
    "cast": r"\(\s*(const\s+)?(struct\s+|unsigned\s+)?\w+\s*\*+\s*\)",
    "cond": r"\b(if|else\s+if)\s*\(",
    "loop": r"\b(for|while)\s*\(",
    "err_return": r"\breturn\s+(-?E[A-Z]+|-\d|NULL)\b",
    "null_check": r"(==|!=)\s*NULL\b|!\s*\w+\s*\)",
    "deref": r"->",
    "index": r"\w\[[^\]]+\]",
    "mem_copy": r"\b(r?t?e?_?memcpy|memset|memmove|strn?cpy|strlcpy|s?n?printf)\s*\(",
    "sizeof": r"\bsizeof\b",
    "atomic": r"\b\w*(atomic|barrier|_wmb|_rmb|_mb|volatile)\w*\b",
    "preproc": r"#\s*(if|ifdef|ifndef|else|elif|endif)\b",
    "switch": r"\b(switch|case)\b",
    "shift": r"<<|>>",
    "hex": r"\b0x[0-9a-fA-F]+\b",
    "log": r"\b\w*(log|LOG|printf|DEBUG|ERR)\w*\s*\(",
    "byte_order": r"\b(rte_(cpu_to|be_to|le_to)_\w+|hton[sl]|ntoh[sl])\b",
}
DIFF_NUMERIC = [
    "has_diff", "diff_truncated", "diff_hunks", "diff_hunks_in_function", "diff_added_lines", "diff_removed_lines",
    "diff_added_comment_lines", "diff_added_blank_lines", "diff_added_functions",
    *(f"diff_{side}_{k}" for k in RISKY for side in ("added", "removed")),
]


def _lines(diff: pl.Expr, sign: str) -> pl.Expr:
    """The ``+`` (or ``-``) lines of a unified diff without the file headers, joined by newlines."""
    s = "\\" + sign
    return diff.str.extract_all(rf"(?m)^{s}([^{s}\n][^\n]*)?$").list.join("\n")


def diff_features(diffs: pl.DataFrame) -> pl.DataFrame:
    """One row per ``sha`` of ``diffs`` (the ``commit_diffs`` / ``*.diffs.parquet`` schema) with
    :data:`DIFF_NUMERIC` (counts; ``has_diff`` = 1). Truncated diffs are counted as far as stored
    and flagged ``diff_truncated``."""
    diff = pl.col("diff").fill_null("")
    d = diffs.select("sha", diff.alias("diff"), pl.col("truncated").fill_null(False),
                     _lines(diff, "+").alias("_add"), _lines(diff, "-").alias("_rem")).unique("sha", keep="first")
    add, rem = pl.col("_add"), pl.col("_rem")
    out = d.select(
        "sha", pl.lit(1).alias("has_diff"), pl.col("truncated").cast(pl.Int8).alias("diff_truncated"),
        pl.col("diff").str.count_matches(r"(?m)^@@ ").alias("diff_hunks"),
        pl.col("diff").str.count_matches(r"(?m)^@@ [^\n]*@@ \S").alias("diff_hunks_in_function"),
        add.str.count_matches(r"(?m)^\+").alias("diff_added_lines"),
        rem.str.count_matches(r"(?m)^-").alias("diff_removed_lines"),
        add.str.count_matches(r"(?m)^\+\s*(/\*|\*|//)").alias("diff_added_comment_lines"),
        add.str.count_matches(r"(?m)^\+\s*$").alias("diff_added_blank_lines"),
        add.str.count_matches(r"(?m)^\+(static\s+)?(inline\s+)?\w[\w \t*]*\s\**\w+\([^;\n]*$")
        .alias("diff_added_functions"),
        *(add.str.count_matches(p).alias(f"diff_added_{k}") for k, p in RISKY.items()),
        *(rem.str.count_matches(p).alias(f"diff_removed_{k}") for k, p in RISKY.items()),
    )
    return out.select("sha", *(pl.col(c).cast(pl.Float64) for c in DIFF_NUMERIC))
