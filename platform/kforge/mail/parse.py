"""Parse one patch e-mail into a row of the acceptance e-mail schema (as ``acceptance_ltp.parquet``).

Subject tags are read as the kernel tools read them: ``[PATCH v3 2/5]``, ``[RFC PATCH]``,
``[PATCH 0/5]`` (cover letter); list tags such as ``[LTP]`` and ``Re:`` prefixes are dropped from
the normalised title.
"""

import email
import email.policy
import email.utils
import re
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


def parse_patch_email(raw: bytes, archive_id: str, max_bytes: int = 65536) -> dict[str, Any] | None:
    """One row, or None when the message is not a patch (no ``[PATCH]``/``[RFC]`` tag)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = re.sub(r"\s+", " ", str(email.header.make_header(email.header.decode_header(msg.get("Subject", "")))))
    tag = _TAG.search(subject)
    if tag is None:
        return None
    is_reply = bool(re.match(r"^\s*(\[[^\]]*\]\s*)*re\s*:", subject, re.IGNORECASE))
    tag_text = tag.group(1)
    version = int(m.group(1)) if (m := _VERSION.search(tag_text)) else 1
    index, total = (int(m.group(1)), int(m.group(2))) if (m := _INDEX.search(tag_text)) else (1, 1)
    name, addr = email.utils.parseaddr(str(email.header.make_header(email.header.decode_header(msg.get("From", "")))))
    date = msg.get("Date", "")
    try:
        dt = email.utils.parsedate_to_datetime(date)
        ts, iso = int(dt.timestamp()), dt.isoformat()
    except (TypeError, ValueError, IndexError):
        ts, iso = 0, ""
    headers = raw.split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    body = _text(msg)
    full = (headers + "\n\n" + body)[:max_bytes]
    return {
        "archive_commit": archive_id, "message_id": (msg.get("Message-Id") or "").strip(),
        "in_reply_to": (msg.get("In-Reply-To") or "").strip(), "from_name": name, "from_email": addr.lower(),
        "date": iso, "ts": ts, "subject": subject, "patch_tag": tag_text, "version": version, "index": index,
        "total": total, "is_cover": index == 0, "is_rfc": "rfc" in tag_text.lower(), "is_reply": is_reply,
        "title_norm": normalise_title(subject), "raw_email": full, "raw_email_bytes": len(raw),
        "has_diff": "\ndiff --git " in body or body.startswith("diff --git "),
    }


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
