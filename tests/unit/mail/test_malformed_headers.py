"""Malformed RFC 2047 headers: the message is skipped with a counted reason, the rest imports."""

import json
import subprocess
from pathlib import Path

import pytest
from kforge.errors import InputError
from kforge.mail.parse import MalformedEmail, decode_header_value, parse_email, parse_messages
from kforge.mail.reader import read_patch_emails

GOOD_FROM = b"Ann Archer <ann@example.org>"


def message(n: int, from_: bytes = GOOD_FROM, subject: bytes = b"[PATCH] lib: add b", extra: bytes = b"") -> bytes:
    return (b"From: " + from_ + b"\nSubject: " + subject + b"\nDate: Mon, 1 Jan 2024 00:00:%02d +0000\n" % n
            + b"Message-Id: <%d@example.org>\n" % n + extra + b"\n"
            + b"Signed-off-by: Ann\n---\ndiff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n@@ -1 +1,2 @@\n int a;\n+int b%d;\n" % n)


# (header value, reason); each is a From: header today's parser aborted on or misread
MALFORMED_FROM = [
    (b"=?x-no-such-charset?B?QW5u?= <a@example.org>", "From: unknown charset"),
    (b"=?latin-99?Q?Ann?= <a@example.org>", "From: unknown charset"),
    (b"=??B?QW5u?= <a@example.org>", "From: unknown charset"),
    (b"=?utf-8?B?A?= <a@example.org>", "From: bad base64"),
    (b"=?utf-8?B?QW5u!!!?= <a@example.org>", "From: bad base64"),
    (b"=?utf-8?B?#$%^?= <a@example.org>", "From: bad base64"),
    (b"=?utf-8?Q?Ann=ZZ?= <a@example.org>", "From: bad quoted-printable"),
    (b"=?utf-8?B?/w==?= <a@example.org>", "From: bytes invalid in their charset"),
    (b"=?utf-8?Q?Ann=FF=FE?= <a@example.org>", "From: bytes invalid in their charset"),
    (b"=?us-ascii?Q?Ren=E9?= <a@example.org>", "From: bytes invalid in their charset"),
    (b"=?utf-16?B?QQ==?= <a@example.org>", "From: bytes invalid in their charset"),
]


@pytest.mark.parametrize(("value", "reason"), MALFORMED_FROM)
def test_malformed_from_is_a_counted_reason(value: bytes, reason: str) -> None:
    with pytest.raises(MalformedEmail) as exc:
        parse_email(message(1, from_=value), "x")
    assert exc.value.reason == reason


def test_malformed_subject_is_a_counted_reason() -> None:
    with pytest.raises(MalformedEmail) as exc:
        parse_email(message(1, subject=b"=?bogus?B?W1BBVENIXSBhOiBi?="), "x")
    assert exc.value.reason == "Subject: unknown charset"


@pytest.mark.parametrize(("value", "name"), [
    (b"=?iso-8859-1?q?Ren=E9_Faure?= <rene@example.org>", "René Faure"),
    (b"=?utf-8?B?UmVuw6k=?= Faure <rene@example.org>", "René Faure"),
    (b"=?utf-8*fr?Q?Ren=C3=A9?= <rene@example.org>", "René"),          # RFC 2231 language suffix
    (b"=?UTF-8?b?UmVuw6k?= <rene@example.org>", "René"),              # unpadded base64 is common
    (b"Ren\xc3\xa9 Faure <rene@example.org>", "René Faure"),           # raw 8-bit UTF-8
    (b"Ren\xe9 <rene@example.org>", "Ren\ufffd"),                      # raw Latin-1: U+FFFD, not a skip
])
def test_well_formed_and_raw_8bit_names_still_read(value: bytes, name: str) -> None:
    row = parse_email(message(1, from_=value), "x")
    assert row is not None and row["from_name"] == name and row["from_email"] == "rene@example.org"


@pytest.mark.parametrize("extra", [b"In-Reply-To: <\xfe0@example.org>\n", b"References: <\xff@x>\n"])
def test_8bit_bytes_in_id_headers_do_not_abort(extra: bytes) -> None:
    raw = message(1, extra=extra).replace(b"<1@example.org>", b"<1\xff@example.org>")
    row = parse_email(raw, "x")
    assert row is not None and row["message_id"] == "<1\ufffd@example.org>"


@pytest.mark.parametrize("date", [b"Mon, 1 Jan 2024 \xff", b"", b"garbage", b"Mon, 1 Jan 99999 00:00:00 +0000",
                                  b"Mon, 1 Jan 2024 00:00:00 +9999"])
def test_unreadable_date_is_a_counted_reason_not_1970(date: bytes) -> None:
    # a ts of 0 (1970) matched any later commit with the same title and counted as years of tenure
    bad = message(2).replace(b"Mon, 1 Jan 2024 00:00:02 +0000", date)
    with pytest.raises(MalformedEmail) as exc:
        parse_email(bad, "y")
    assert exc.value.reason == "Date: unreadable"
    no_header = message(3).replace(b"Date: Mon, 1 Jan 2024 00:00:03 +0000\n", b"")
    parsed = parse_messages([("a", message(1)), ("b", bad), ("c", no_header)])
    assert [r["archive_commit"] for r in parsed.rows] == ["a"] and parsed.skipped == {"Date: unreadable": 2}


def test_minus_zero_zone_date_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        row = parse_email(message(1).replace(b"+0000", b"-0000"), "x")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert row is not None and row["ts"] == 1704067201 and row["date"] == "2024-01-01T00:00:01+00:00"


def test_decode_header_value_rejects_an_encoded_word_only() -> None:
    assert decode_header_value("=?utf-8?Q?a?= plain =?utf-8?B?Yg==?=", "From") == "a plain b"
    assert decode_header_value("=?utf-8?Q?a?=\n =?utf-8?Q?_b?= Caf\u00e9", "From") == "a b Caf\u00e9"
    assert decode_header_value("=?utf-8?X?QW5u?= and =? not a word", "From") == "=?utf-8?X?QW5u?= and =? not a word"
    with pytest.raises(MalformedEmail, match="X: bad base64"):
        decode_header_value("ok =?utf-8?B?A?=", "X")


def _mbox(msgs: list[bytes]) -> bytes:
    return b"".join(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + m for m in msgs)


def test_parse_messages_skips_and_counts_the_rest_imports(tmp_path: Path) -> None:
    bad = [message(10 + i, from_=v) for i, (v, _) in enumerate(MALFORMED_FROM)]
    good = [message(i) for i in range(3)]
    parsed = parse_messages([(str(i), m) for i, m in enumerate(good[:1] + bad + good[1:])])
    assert len(parsed.rows) == 3 and parsed.messages == 3 + len(MALFORMED_FROM)
    expected: dict[str, int] = {}
    for _, reason in MALFORMED_FROM:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(parsed.skipped) == expected
    mbox = tmp_path / "list.mbox"
    mbox.write_bytes(_mbox(good[:1] + bad + good[1:]))
    got = read_patch_emails(mbox)
    assert got.frame.height == 3
    assert got.report() == {"messages": 3 + len(MALFORMED_FROM), "skipped_malformed": len(MALFORMED_FROM),
                            "skipped_reasons": dict(sorted(expected.items())), "patch_emails": 3}


def test_only_malformed_messages_is_one_error_naming_the_skips(tmp_path: Path) -> None:
    mbox = tmp_path / "bad.mbox"
    mbox.write_bytes(_mbox([message(1, from_=MALFORMED_FROM[0][0])]))
    with pytest.raises(InputError, match="1 malformed message"):
        read_patch_emails(mbox)


def _public_inbox(path: Path, msgs: list[bytes]) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    stream = b""
    for k, raw in enumerate(msgs, start=1):
        stream += (b"commit refs/heads/master\nmark :%d\ncommitter A <a@x> %d +0000\ndata 2\nm\n" % (k, 1700000000 + k)
                   + (b"from :%d\n" % (k - 1) if k > 1 else b"") + b"M 100644 inline m\ndata %d\n" % len(raw) + raw + b"\n")
    subprocess.run(["git", f"--git-dir={path}", "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", f"--git-dir={path}", "symbolic-ref", "HEAD", "refs/heads/master"], check=True)


def test_ingest_list_cli_reports_skips_and_stores_the_rest(tmp_path: Path, kforge_home: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from kforge.cli.main import main
    from kforge.config import Paths
    from kforge.storage import Warehouse

    repo = tmp_path / "p"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=A", "-c", "user.email=a@x", "commit", "-q",
                    "--allow-empty", "-m", "init"], check=True)
    archive = tmp_path / "inbox.git"
    _public_inbox(archive, [message(1), message(2, from_=b"=?utf-8?B?/w==?= <x@example.org>"),
                            message(3, from_=b"=?nope?Q?x?= <y@example.org>"), message(4)])
    assert main(["ingest-list", str(archive), "--project", str(repo)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["messages"] == 4 and out["skipped_malformed"] == 2 and out["stored_new"] == 2
    assert out["skipped_reasons"] == {"From: bytes invalid in their charset": 1, "From: unknown charset": 1}
    assert Warehouse(Paths.of(kforge_home).warehouse).count("mail_patches") == 2
    only_bad = tmp_path / "bad.mbox"
    only_bad.write_bytes(_mbox([message(5, from_=b"=?utf-8?B?A?= <z@example.org>")]))
    assert main(["ingest-list", str(only_bad), "--project", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kforge: error:") and "malformed" in err and "Traceback" not in err
