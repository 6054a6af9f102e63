"""Commit-message parsing: subject prefix, trailers, Fixes:, reverts, CVE ids.

Trailers are the ``Key: value`` lines of the message's last paragraph (as ``git
interpret-trailers`` reads them); ``Fixes:``, ``Cc: stable`` and ``Link:`` are also recognised
anywhere in the body because real kernel messages put them above notes and ``---`` lines.
"""

import re
from dataclasses import dataclass, field

TRAILER_LISTS = {
    "signed-off-by": "signed_off_by",
    "reviewed-by": "reviewed_by",
    "acked-by": "acked_by",
    "tested-by": "tested_by",
    "reported-by": "reported_by",
    "suggested-by": "suggested_by",
    "co-developed-by": "co_developed_by",
    "helped-by": "helped_by",
    "cc": "cc",
    "link": "link",
    "closes": "closes",
}

_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40}):\s*(.+?)\s*$")
_FIXES = re.compile(r'^\s*Fixes:\s*([0-9a-fA-F]{6,40})\b(?:\s*\(\s*"?(.*?)"?\s*\)\s*)?', re.MULTILINE | re.IGNORECASE)
_REVERT_SUBJECT = re.compile(r'^Revert\s+"(.*)"\s*$')
_REVERT_SHA = re.compile(r"This reverts commit ([0-9a-f]{7,40})", re.IGNORECASE)
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
_PREFIX = re.compile(r"^\s*(?:\[[^\]]*\]\s*)*([A-Za-z0-9_.,/+ -]{1,60}?):\s+\S")
_STABLE = re.compile(r"^\s*Cc:.*\bstable@", re.MULTILINE | re.IGNORECASE)


@dataclass
class ParsedMessage:
    subject: str
    body: str
    subject_prefix: str
    trailers: dict[str, list[str]] = field(default_factory=dict)
    other_by_trailers: list[str] = field(default_factory=list)
    cc_stable: bool = False
    fixes: list[dict[str, str]] = field(default_factory=list)
    revert_subject: str | None = None
    revert_sha: str | None = None
    cve_ids: list[str] = field(default_factory=list)


def split_message(message: str) -> tuple[str, str]:
    """Subject (first paragraph joined to one line, as git does) and body."""
    text = message.replace("\r\n", "\n").strip("\n")
    head, _, rest = text.partition("\n\n")
    subject = " ".join(line.strip() for line in head.splitlines()).strip()
    return subject, rest.strip("\n")


def subject_prefix(subject: str) -> str:
    """``net/ice: fix foo`` -> ``net/ice``; ``Revert "x: y"`` -> ``x``; none -> ``""``."""
    m = _REVERT_SUBJECT.match(subject)
    if m:
        subject = m.group(1)
    m = _PREFIX.match(subject)
    if not m:
        return ""
    prefix = m.group(1).strip()
    if " " in prefix and "/" not in prefix and "," not in prefix and len(prefix.split()) > 3:
        return ""  # a sentence with a colon, not a subsystem tag
    return prefix


def _trailer_block(body: str) -> list[str]:
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    if not paragraphs:
        return []
    lines = paragraphs[-1].splitlines()
    keyed = sum(1 for line in lines if _TRAILER.match(line))
    # git's rule of thumb: a trailer block is mostly Key: value lines
    return lines if keyed and keyed >= max(1, len(lines) // 2) else []


def parse_message(message: str) -> ParsedMessage:
    subject, body = split_message(message)
    out = ParsedMessage(subject=subject, body=body, subject_prefix=subject_prefix(subject))
    lists: dict[str, list[str]] = {v: [] for v in TRAILER_LISTS.values()}
    for line in _trailer_block(body):
        m = _TRAILER.match(line)
        if not m:
            continue
        key, value = m.group(1).lower(), m.group(2)
        if key in TRAILER_LISTS:
            lists[TRAILER_LISTS[key]].append(value)
        elif key.endswith("-by"):
            out.other_by_trailers.append(f"{m.group(1)}: {value}")
    out.trailers = lists
    out.cc_stable = bool(_STABLE.search(body))
    seen = set()
    for fm in _FIXES.finditer(body):
        sha = fm.group(1).lower()
        if sha in seen:
            continue
        seen.add(sha)
        out.fixes.append({"sha": sha, "subject": (fm.group(2) or "").strip()})
    rm = _REVERT_SUBJECT.match(subject)
    if rm:
        out.revert_subject = rm.group(1)
    sm = _REVERT_SHA.search(body)
    if sm:
        out.revert_sha = sm.group(1).lower()
        if out.revert_subject is None:
            out.revert_subject = ""
    out.cve_ids = sorted({c.upper() for c in _CVE.findall(subject + "\n" + body)})
    return out
