"""Read the patch e-mails of a public-inbox git archive or an mbox/.patch file, with a count of
what was read and of the messages skipped as malformed (by reason).

Example::

    got = read_patch_emails("/srv/lore/ltp")
    got.frame.height, got.report()   # {"messages": ..., "skipped_malformed": 1, "skipped_reasons": {...}}
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kforge.errors import InputError
from kforge.mail.archive import public_inbox_messages
from kforge.mail.parse import EMAIL_COLUMNS, ParsedMessages, parse_messages, split_mbox


@dataclass(frozen=True)
class PatchEmails:
    frame: pl.DataFrame        # EMAIL_COLUMNS, one row per patch e-mail (replies dropped)
    parsed: ParsedMessages

    def report(self) -> dict[str, object]:
        return {**self.parsed.report(), "patch_emails": self.frame.height}


def _messages(p: Path, since: str) -> Iterator[tuple[str, bytes]]:
    if p.is_dir():
        yield from public_inbox_messages(p, since)
    else:
        for raw in split_mbox(p.read_bytes()):
            yield hashlib.sha1(raw).hexdigest(), raw


def read_patch_emails(path: str | Path, since: str = "") -> PatchEmails:
    """Patch e-mails (non-patches and replies dropped, malformed messages skipped and counted)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such archive or mbox")
    parsed = parse_messages(_messages(p, since))
    if not parsed.rows:
        skipped = sum(parsed.skipped.values())
        raise InputError(f"{p}: no patch e-mails found (subjects need a [PATCH] or [RFC] tag)"
                         + (f"; {skipped} malformed message(s) skipped: {dict(parsed.skipped)}" if skipped else ""))
    frame = pl.DataFrame(parsed.rows).select(EMAIL_COLUMNS).filter(~pl.col("is_reply"))
    return PatchEmails(frame, parsed)
