from kforge.git.message import parse_message, split_message, subject_prefix

KERNEL_MSG = """net/ice: fix use-after-free in ring teardown

The ring was freed before the IRQ was disabled.

Fixes: 0123456789ab ("net/ice: add ring support")
Fixes: deadbeef1234
Cc: stable@dpdk.org
Reported-by: syzbot+123@syzkaller.appspotmail.com
Signed-off-by: A Dev <a@example.org>
Reviewed-by: B Rev <b@example.org>
Acked-by: C Ack <c@example.org>
Tested-by: D Test <d@example.org>
Co-developed-by: E Co <e@example.org>
Link: https://lore.kernel.org/r/1
Closes: https://bugzilla.example.org/2
Bisected-by: F Bis <f@example.org>
"""


def test_trailers_are_parsed_into_lists() -> None:
    m = parse_message(KERNEL_MSG)
    assert m.subject == "net/ice: fix use-after-free in ring teardown"
    assert m.subject_prefix == "net/ice"
    assert m.trailers["signed_off_by"] == ["A Dev <a@example.org>"]
    assert m.trailers["reviewed_by"] == ["B Rev <b@example.org>"]
    assert m.trailers["acked_by"] == ["C Ack <c@example.org>"]
    assert m.trailers["tested_by"] == ["D Test <d@example.org>"]
    assert m.trailers["co_developed_by"] == ["E Co <e@example.org>"]
    assert m.trailers["reported_by"] == ["syzbot+123@syzkaller.appspotmail.com"]
    assert m.trailers["link"] == ["https://lore.kernel.org/r/1"]
    assert m.trailers["closes"] == ["https://bugzilla.example.org/2"]
    assert m.other_by_trailers == ["Bisected-by: F Bis <f@example.org>"]
    assert m.cc_stable


def test_fixes_with_and_without_subject() -> None:
    m = parse_message(KERNEL_MSG)
    assert m.fixes == [{"sha": "0123456789ab", "subject": "net/ice: add ring support"},
                       {"sha": "deadbeef1234", "subject": ""}]


def test_key_value_lines_in_prose_are_not_trailers() -> None:
    m = parse_message("x: y\n\nNote: this is prose.\nMore prose here that is long.\nAnd more.\n\nSigned-off-by: A <a@b>")
    assert m.trailers["signed_off_by"] == ["A <a@b>"]
    assert m.other_by_trailers == []


def test_revert_and_cve() -> None:
    m = parse_message('Revert "mm: add foo"\n\nThis reverts commit abcdef1234567.\nFixes CVE-2024-12345.\n')
    assert m.revert_subject == "mm: add foo"
    assert m.revert_sha == "abcdef1234567"
    assert m.subject_prefix == "mm"
    assert m.cve_ids == ["CVE-2024-12345"]


def test_subject_prefix_edge_cases() -> None:
    assert subject_prefix("bpf, libbpf: fix x") == "bpf, libbpf"
    assert subject_prefix("Update LGPL 2.1 license text; switch to SPDX") == ""
    assert subject_prefix("This is a sentence with many words: and a colon") == ""
    assert subject_prefix("[PATCH v2] drm/i915: fix") == "drm/i915"


def test_split_message_joins_wrapped_subject() -> None:
    assert split_message("a very\nlong subject\n\nbody") == ("a very long subject", "body")
