"""Streaming parser for ``git log --raw --numstat -z`` with a machine-readable header.

One pass over git's output, one record per commit, constant memory: git does the diffing (the
floor: kforge cannot read history faster than git hands it over) and this module only splits
bytes. Header fields are separated by 0x1f and closed by 0x1d; records start with 0x1e.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

HEADER_FIELDS = (
    "sha", "parents", "author_name", "author_email", "author_date", "author_ts",
    "committer_name", "committer_email", "committer_date", "committer_ts", "message",
)
LOG_FORMAT = "%x1e" + "%x1f".join(("%H", "%P", "%an", "%ae", "%aI", "%at", "%cn", "%ce", "%cI", "%ct", "%B")) + "%x1d"


@dataclass
class FileChange:
    path: str
    old_path: str | None
    change_type: str
    added: int | None
    deleted: int | None
    binary: bool


@dataclass
class RawCommit:
    header: dict[str, str]
    files: list[FileChange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _decode(b: bytes, problems: list[str], what: str) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"invalid UTF-8 in {what}; stored with U+FFFD replacement characters")
        return b.decode("utf-8", errors="replace")


def parse_record(rec: bytes) -> RawCommit:
    """Parse one record (without its leading 0x1e)."""
    head, sep, rest = rec.partition(b"\x1d")
    if not sep:
        raise ValueError("truncated record: header terminator missing")
    problems: list[str] = []
    parts = head.split(b"\x1f")
    if len(parts) != len(HEADER_FIELDS):
        raise ValueError(f"malformed header: {len(parts)} fields, expected {len(HEADER_FIELDS)}")
    header = {}
    for name, raw in zip(HEADER_FIELDS, parts, strict=True):
        header[name] = _decode(raw, problems, "commit " + name if name != "message" else "commit message")
    tokens = rest.split(b"\x00")
    files: dict[str, FileChange] = {}
    order: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i].lstrip(b"\n")
        if not tok:
            i += 1
            continue
        if tok.startswith(b":"):  # raw: ":old new oldsha newsha STATUS" then path(s)
            status = tok.rsplit(b" ", 1)[-1].decode()
            kind = status[:1]
            if kind in ("R", "C"):
                old = _decode(tokens[i + 1], problems, "a path")
                path = _decode(tokens[i + 2], problems, "a path")
                i += 3
            else:
                old = None
                path = _decode(tokens[i + 1], problems, "a path")
                i += 2
            files[path] = FileChange(path, old, kind, None, None, False)
            order.append(path)
            continue
        # numstat: "added\tdeleted\tpath" or "added\tdeleted\t" followed by old, new (renames)
        a, d, p = tok.split(b"\t", 2)
        if p:
            path = _decode(p, problems, "a path")
            i += 1
        else:
            path = _decode(tokens[i + 2], problems, "a path")
            i += 3
        binary = a == b"-"
        fc = files.get(path)
        if fc is None:
            fc = FileChange(path, None, "M", None, None, False)
            files[path] = fc
            order.append(path)
        fc.added = None if binary else int(a)
        fc.deleted = None if binary else int(d)
        fc.binary = binary
        if binary:
            fc.added, fc.deleted = 0, 0
    return RawCommit(header, [files[p] for p in order], problems)


def iter_records(stream: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream (chunks) into records separated by 0x1e; the last one is yielded at EOF."""
    buf = b""
    started = False
    for chunk in stream:
        buf += chunk
        parts = buf.split(b"\x1e")
        buf = parts.pop()
        for part in parts:
            if started:
                yield part
            started = True
    if started:
        yield buf
