"""Rule-based commit tags. Each rule is documented; tests pin both hits and false positives.

Tags: security, bugfix, revert, backport, docs, refactor, performance. Rules look at the
subject, the body (minus trailers where noted) and structured trailers; words such as
"locking", "leak" or "overflow" alone do not make a commit a security fix.
"""

import re
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class TagRule:
    tag: str
    rule: str
    doc: str
    subject: str | None = None  # regex on the subject
    body: str | None = None     # regex on the body


RULES: tuple[TagRule, ...] = (
    TagRule("security", "cve", "a CVE id anywhere in the message", body=r"\bCVE-\d{4}-\d{4,}\b"),
    TagRule("security", "sanitizer", "a sanitizer report is quoted (KASAN/KMSAN/KCSAN/UBSAN splat)",
            body=r"\b(BUG: KASAN|BUG: KMSAN|BUG: KCSAN|UBSAN:|KASAN: [a-z-]+|KMSAN: [a-z-]+)"),
    TagRule("security", "syzbot", "reported by syzbot/syzkaller", body=r"^Reported-by:.*\bsyz(bot|kaller)\b"),
    TagRule("security", "memory-safety",
            "names a memory-safety bug class: use-after-free, double free, out-of-bounds, buffer/integer overflow (not plain 'overflow')",
            subject=r"\b(use[- ]after[- ]free|\bUAF\b|double[- ]free|out[- ]of[- ]bounds|\bOOB\b|buffer overflow|heap overflow|stack overflow|integer overflow|null[- ]ptr[- ]deref|NULL pointer dereference)"),
    TagRule("bugfix", "fixes-trailer", "has a Fixes: trailer", body=r"^Fixes:\s*[0-9a-f]{6,}"),
    TagRule("bugfix", "fix-verb", "subject says fix/fixes/fixed (not 'prefix', 'suffix', 'fixup' of docs)",
            subject=r"\b(fix|fixes|fixed|fixing)\b"),
    TagRule("revert", "revert", "subject starts with Revert", subject=r'^Revert\s+"'),
    TagRule("backport", "stable", "Cc: stable or an upstream-commit marker", body=r"(^Cc:.*stable@|^\[\s*upstream commit|^commit [0-9a-f]{40} upstream)"),
    TagRule("docs", "docs", "documentation-only wording in the subject",
            subject=r"(^(docs?|Documentation)[:/]|\b(typo|spelling|kernel-doc|comment(s)?)\b)"),
    TagRule("refactor", "refactor", "refactor/cleanup/rename/simplify/move without fix wording",
            subject=r"\b(refactor|clean ?up|cleanups|rename|simplify|move|reorganize|consolidate|remove unused|drop unused)\b"),
    TagRule("performance", "performance", "speed/latency/throughput wording",
            subject=r"\b(speed ?up|faster|optimi[sz]e|optimi[sz]ation|performance|improve latency|reduce overhead|avoid (an )?extra|fast ?path)\b"),
)


def tag_commits(commits: pl.DataFrame) -> pl.DataFrame:
    """Long table (repo, sha, tag, rule): every rule that fired on every commit."""
    parts = []
    for r in RULES:
        cond = pl.lit(False)
        if r.subject:
            cond = cond | pl.col("subject").str.contains("(?i)" + r.subject)
        if r.body:
            cond = cond | pl.col("body").str.contains("(?im)" + r.body)
        parts.append(commits.filter(cond).select("repo", "sha", pl.lit(r.tag).alias("tag"), pl.lit(r.rule).alias("rule")))
    out = pl.concat(parts) if parts else pl.DataFrame(schema={"repo": pl.String, "sha": pl.String, "tag": pl.String, "rule": pl.String})
    # a refactor that also fixes a bug is a bugfix, not a refactor
    fixes = out.filter(pl.col("tag") == "bugfix").select("repo", "sha").unique()
    refactors = out.filter(pl.col("tag") == "refactor").join(fixes, on=["repo", "sha"], how="anti")
    return pl.concat([out.filter(pl.col("tag") != "refactor"), refactors]).unique(maintain_order=True)


def rule_docs() -> list[dict[str, str]]:
    return [{"tag": r.tag, "rule": r.rule, "doc": r.doc} for r in RULES]


def _compile_check() -> None:
    for r in RULES:
        for pat in (r.subject, r.body):
            if pat:
                re.compile(pat)
