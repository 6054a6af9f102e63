"""``kforge healing anonymize --input F --output G``: text files and JSONL rows, user rules, and the
refusals (missing input, output over the input, output in a missing directory) as one error line."""

import json
from pathlib import Path

import pytest
from kforge.cli.main import main

TRACEBACK = """\
2024-05-02 03:14:07 run by mlopez@acme-robotics.com on gpu-node-17.cluster.acme.com (10.20.30.40)
Traceback (most recent call last):
  File "/home/mlopez/projects/churn/train.py", line 12, in <module>
    df = load(cfg)
  File "/home/mlopez/.venv/lib/python3.11/site-packages/pandas/core/frame.py", line 3761, in __getitem__
    indexer = self.columns.get_loc(key)
KeyError: 'price'
"""


def _run(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["--home", str(home), "healing", "anonymize", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_error_line(rc: int, err: str, *needles: str) -> None:
    assert rc == 2 and err.startswith("kforge: error:") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, err


def test_a_text_file_is_scrubbed_and_keeps_what_diagnosis_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "crash.txt", tmp_path / "crash.anon.txt"
    src.write_text(TRACEBACK)
    rc, out, err = _run(tmp_path / "home", capsys, "--input", str(src), "--output", str(dst))
    assert rc == 0, err
    text = dst.read_text()
    for secret in ("mlopez", "acme-robotics", "gpu-node-17", "10.20.30.40"):
        assert secret not in text
    for kept in ("KeyError: 'price'", '/home/<user>/projects/churn/train.py", line 12, in <module>',
                 "/site-packages/pandas/core/frame.py\", line 3761, in __getitem__", "<email-1>", "<host-1>", "<ip-1>"):
        assert kept in text
    assert src.read_text() == TRACEBACK
    assert out.startswith(f"anonymized {src} -> {dst} (") and "email 1" in out and "home-user 2" in out
    assert not (tmp_path / "home").exists()   # reading rules from the home does not create one


def test_jsonl_rows_are_documents_and_only_text_fields_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "errors.jsonl", tmp_path / "errors.anon.jsonl"
    rows = [{"id": "err-1", "traceback": TRACEBACK, "contact": "ana@acme.io"},
            {"id": "err-2", "log": "[ 1.0] BUG: KASAN: slab-out-of-bounds in acme_probe+0x1/0x2\n"
                                   "[ 1.1] peer 10.9.8.7 via 3c:52:82:5a:1b:9f"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out, err = _run(tmp_path, capsys, "--input", str(src), "--output", str(dst))
    assert rc == 0, err
    got = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [g["id"] for g in got] == ["err-1", "err-2"] and got[0]["contact"] == "ana@acme.io"   # not a text field
    assert "mlopez" not in got[0]["traceback"] and "<ip-1>" in got[0]["traceback"]
    assert got[1]["log"].endswith("peer <ip-1> via <mac-1>")   # each row numbers afresh
    assert "acme_probe+0x1/0x2" in got[1]["log"]
    assert out.startswith("anonymized 2 rows -> ")
    rc, _, err = _run(tmp_path, capsys, "--input", str(src), "--output", str(dst), "--fields", "contact")
    assert rc == 0, err
    got = [json.loads(line) for line in dst.read_text().splitlines()]
    assert got[0]["contact"] == "<email-1>" and "mlopez" in got[0]["traceback"]   # only the named field


def test_user_rules_from_a_file_and_from_the_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "log.txt", tmp_path / "out.txt"
    src.write_text("ORCA-7 failed on ticket ACME-4411\n")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"name": "codename", "pattern": r"\bORCA-\d+", "replacement": "<project>"}]}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "anonymize.json").write_text(json.dumps({"rules": [{"name": "ticket", "pattern": r"ACME-\d+",
                                                                "replacement": "<ticket-{n}>"}]}))
    rc, out, err = _run(home, capsys, "--input", str(src), "--output", str(dst), "--rules", str(rules))
    assert rc == 0, err
    assert dst.read_text() == "<project> failed on ticket <ticket-1>\n"
    assert "codename 1" in out and "ticket 1" in out


def test_missing_input_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(tmp_path, capsys, "--input", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "o.txt"))
    _one_error_line(rc, err, "nope.txt: no such file")
    assert not (tmp_path / "o.txt").exists()


def test_output_over_the_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "crash.txt"
    src.write_text(TRACEBACK)
    rc, _, err = _run(tmp_path, capsys, "--input", str(src), "--output", str(src))
    _one_error_line(rc, err, "is also the input")
    assert src.read_text() == TRACEBACK


def test_output_in_a_missing_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "crash.txt"
    src.write_text(TRACEBACK)
    rc, _, err = _run(tmp_path, capsys, "--input", str(src), "--output", str(tmp_path / "no" / "such" / "out.txt"))
    _one_error_line(rc, err, "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(("content", "needle"), [("{oops", "not a valid JSON rule file"),
                                                 ('{"rules": [{"name": "x", "pattern": "(["}]}', "invalid regex")])
def test_a_bad_rules_file_is_one_error_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              content: str, needle: str) -> None:
    src, dst, rules = tmp_path / "crash.txt", tmp_path / "out.txt", tmp_path / "rules.json"
    src.write_text(TRACEBACK)
    rules.write_text(content)
    rc, _, err = _run(tmp_path, capsys, "--input", str(src), "--output", str(dst), "--rules", str(rules))
    _one_error_line(rc, err, needle)
    assert not dst.exists()


def test_a_bad_jsonl_line_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "errors.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"id": 1, "traceback": "x"}\nnot json\n')
    dst.write_text("previous contents\n")
    rc, _, err = _run(tmp_path, capsys, "--input", str(src), "--output", str(dst))
    _one_error_line(rc, err, "errors.jsonl:2: not valid JSON")
    assert dst.read_text() == "previous contents\n"   # the old output is left whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")] == []


def test_feedback_add_scrubs_by_default_and_keeps_text_with_no_anonymize(tmp_path) -> None:  # noqa: ANN001
    """The CLI opt-out reaches the store: same traceback, scrubbed by default, kept with --no-anonymize."""
    from kforge.cli.main import main
    from kforge.config import Paths
    from kforge.storage import Warehouse

    home = tmp_path / "h"
    tb = "Traceback (most recent call last):\n  File \"/home/alice/x.py\", line 3\nKeyError: 'a'"
    fields = ["kind=label", f"traceback={tb}", "label=label_exception_type", "value=KeyError"]
    assert main(["--home", str(home), "feedback", "add", "healing", *fields]) == 0
    assert main(["--home", str(home), "feedback", "add", "healing", *fields, "--no-anonymize"]) == 0
    rows = Warehouse(Paths.of(home).warehouse).read("select traceback, anonymized from feedback_healing")
    texts = dict(zip(rows["anonymized"].to_list(), rows["traceback"].to_list(), strict=True))
    assert "alice" not in texts[True] and "<user>" in texts[True]
    assert "alice" in texts[False] and "KeyError" in texts[True]
