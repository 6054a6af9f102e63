"""Parse one patch e-mail into a row of the acceptance e-mail schema (as ``acceptance_ltp.parquet``).

Subject tags are read as the kernel tools read them: ``[PATCH v3 2/5]``, ``[RFC PATCH]``,
``[PATCH 0/5]`` (cover letter); list tags such as ``[LTP]`` and ``Re:`` prefixes are dropped from
the normalised title.

A header that RFC 2047 cannot decode (an encoded word with an unknown charset, broken base64 or
quoted-printable, or bytes its charset rejects) makes the message unreadable: :func:`parse_email`
raises :class:`MalformedEmail` with a short reason to count, :func:`parse_messages` skips it and
counts the reason, and the rest of an archive imports. So is a patch whose Date: is missing or
unreadable (``Date: unreadable``): without a time it cannot be matched to the commits merged after
it. Raw 8-bit bytes outside encoded words are read as UTF-8 with U+FFFD, as mailers that send them mean.
"""

import base64
import binascii
import email
import email.header
import email.policy
import email.utils
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

_TAG = re.compile(r"\[([^\]]*\b(?:PATCH|RFC)\b[^\]]*)\]", re.IGNORECASE)
_VERSION = re.compile(r"\bv(\d+)\b", re.IGNORECASE)
_INDEX = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")
_LEADING = re.compile(r"^\s*((re|fwd?)\s*:\s*|\[[^\]]*\]\s*)+", re.IGNORECASE)

EMAIL_COLUMNS = ("archive_commit", "message_id", "in_reply_to", "from_name", "from_email", "date", "ts", "subject",
                 "patch_tag", "version", "index", "total", "is_cover", "is_rfc", "is_reply", "title_norm",
                 "raw_email", "raw_email_bytes", "has_diff")


def normalise_title(subject: str) -> str:
    """``[LTP] [PATCH v2 1/3] syscalls/foo:  Fix X`` -> ``syscalls/foo: fix x``."""
    s = _LEADING.sub("", subject or "")
    return re.sub(r"\s+", " ", s).strip().lower()


def _text(msg: Any) -> str:
    if msg.is_multipart():
        parts = [p for p in msg.walk() if p.get_content_maintype() == "text"]
        return "\n".join(_payload(p) for p in parts)
    return _payload(msg)


def _payload(part: Any) -> str:
    data = part.get_payload(decode=True)
    if data is None:
        return str(part.get_payload() or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


class MalformedEmail(ValueError):
    """A message that cannot be decoded; ``reason`` is a short category (e.g. ``From: unknown charset``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason


_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([BbQq])\?([^?\s]*)\?=")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BAD_QP = re.compile(r"=(?![0-9A-Fa-f]{2})")


def _word(name: str, charset: str, enc: str, payload: str) -> str:
    """One RFC 2047 encoded word, strictly."""
    if enc in "Bb":
        if not _BASE64.fullmatch(payload) or len(payload.rstrip("=")) % 4 == 1:
            raise MalformedEmail(f"{name}: bad base64", payload[:40])
        data = base64.b64decode(payload.rstrip("=") + "=" * (-len(payload.rstrip("=")) % 4))
    else:
        if _BAD_QP.search(payload) or not payload.isascii():
            raise MalformedEmail(f"{name}: bad quoted-printable", payload[:40])
        data = binascii.a2b_qp(payload.encode("ascii"), header=True)
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en
    try:
        return data.decode(charset)
    except LookupError:
        raise MalformedEmail(f"{name}: unknown charset", charset[:40]) from None
    except UnicodeDecodeError:
        raise MalformedEmail(f"{name}: bytes invalid in their charset", charset) from None


def decode_header_value(value: Any, name: str) -> str:
    """One header as text. Encoded words are decoded strictly (:class:`MalformedEmail` on an
    unknown charset, broken base64 or quoted-printable, bytes invalid in the charset); raw 8-bit
    bytes are read as UTF-8 (U+FFFD where they are not). An RFC 2231 language suffix
    (``utf-8*en``) is allowed; whitespace between two encoded words is dropped (RFC 2047 6.2)."""
    text = str(_raw_text(value))
    out, pos, after_word = [], 0, False
    for m in _ENCODED_WORD.finditer(text):
        between = text[pos:m.start()]
        if not (after_word and not between.strip()):
            out.append(between)
        out.append(_word(name, *m.groups()))
        pos, after_word = m.end(), True
    out.append(text[pos:])
    return "".join(out)


def _raw_text(value: Any) -> Any:
    """A header the parser kept as raw 8-bit bytes (a ``Header``), as text: UTF-8, U+FFFD where not."""
    if isinstance(value, email.header.Header):
        return "".join(d.decode("utf-8", "replace") if isinstance(d, bytes) else d
                       for d, _ in email.header.decode_header(value))
    return value


def _plain(msg: Any, name: str) -> str:
    """A header that is not RFC 2047-decoded (ids, dates), as text."""
    value = msg.get(name)
    return "" if value is None else str(_raw_text(value)).strip()


def _date(value: str) -> tuple[int, str]:
    """Unix seconds and ISO text of a Date: header; :class:`MalformedEmail` when it is missing or
    unreadable (a made-up time would match later commits by title and skew sender tenure).
    ``-0000`` (UTC, local zone unknown) is read as UTC, not as this machine's zone."""
    try:
        dt = email.utils.parsedate_to_datetime(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()), dt.isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        raise MalformedEmail("Date: unreadable", value[:40]) from None


def parse_email(raw: bytes, archive_id: str, max_bytes: int = 65536) -> dict[str, Any] | None:
    """One row, or None when the message is not a patch (no ``[PATCH]``/``[RFC]`` tag); raises
    :class:`MalformedEmail` when its From: or Subject: cannot be decoded or its Date: cannot be read."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = re.sub(r"\s+", " ", decode_header_value(msg.get("Subject", ""), "Subject"))
    tag = _TAG.search(subject)
    if tag is None:
        return None
    is_reply = bool(re.match(r"^\s*(\[[^\]]*\]\s*)*re\s*:", subject, re.IGNORECASE))
    tag_text = tag.group(1)
    version = int(m.group(1)) if (m := _VERSION.search(tag_text)) else 1
    index, total = (int(m.group(1)), int(m.group(2))) if (m := _INDEX.search(tag_text)) else (1, 1)
    name, addr = email.utils.parseaddr(decode_header_value(msg.get("From", ""), "From"))
    ts, iso = _date(_plain(msg, "Date"))
    headers = raw.split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    body = _text(msg)
    full = (headers + "\n\n" + body)[:max_bytes]
    return {
        "archive_commit": archive_id, "message_id": _plain(msg, "Message-Id"),
        "in_reply_to": _plain(msg, "In-Reply-To"), "from_name": name, "from_email": addr.lower(),
        "date": iso, "ts": ts, "subject": subject, "patch_tag": tag_text, "version": version, "index": index,
        "total": total, "is_cover": index == 0, "is_rfc": "rfc" in tag_text.lower(), "is_reply": is_reply,
        "title_norm": normalise_title(subject), "raw_email": full, "raw_email_bytes": len(raw),
        "has_diff": "\ndiff --git " in body or body.startswith("diff --git "),
    }


def parse_patch_email(raw: bytes, archive_id: str, max_bytes: int = 65536) -> dict[str, Any] | None:
    """:func:`parse_email`, with an undecodable message read as None (not a patch we can use)."""
    try:
        return parse_email(raw, archive_id, max_bytes)
    except MalformedEmail:
        return None


@dataclass
class ParsedMessages:
    """The patch rows of a batch of messages, how many messages were read and why some were skipped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def report(self) -> dict[str, object]:
        return {"messages": self.messages, "skipped_malformed": sum(self.skipped.values()),
                "skipped_reasons": dict(sorted(self.skipped.items()))}


def parse_messages(messages: Iterable[tuple[str, bytes]], max_bytes: int = 65536) -> ParsedMessages:
    """Parse ``(archive id, raw message)`` pairs: patch rows kept, non-patches dropped, malformed
    messages skipped and counted by reason."""
    out = ParsedMessages()
    for archive_id, raw in messages:
        out.messages += 1
        try:
            row = parse_email(raw, archive_id, max_bytes)
        except MalformedEmail as exc:
            out.skipped[exc.reason] += 1
            continue
        if row is not None:
            out.rows.append(row)
    return out


def split_mbox(data: bytes) -> list[bytes]:
    """Messages of an mbox (``From `` separator lines) or a single message / ``.patch`` file."""
    if not data.startswith(b"From "):
        return [data]
    parts = re.split(rb"(?m)^From \S+.*\n", data)
    return [p for p in parts if p.strip()]


def diff_of(raw_email: str) -> str:
    """The unified diff part of a message (what ``git patch-id`` hashes)."""
    i = raw_email.find("\ndiff --git ")
    return raw_email[i + 1:] if i >= 0 else ""
