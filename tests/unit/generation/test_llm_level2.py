"""The LLM as level 2: its prompt carries level 1's labels and the neighbours, the answer's first line is
the subject, and an empty answer falls back to NNGen's subject (said in the provenance)."""

import pytest
from kforge.errors import InputError
from kforge.generation.llm_level2 import SUBJECT_TEMPLATE, draft, draft_subjects, parse_subject
from kforge.llm.scripted import ScriptedBackend

DIFF = ("diff --git a/drivers/net/ice/ice_rxtx.c b/drivers/net/ice/ice_rxtx.c\n"
        "--- a/drivers/net/ice/ice_rxtx.c\n+++ b/drivers/net/ice/ice_rxtx.c\n"
        "@@ -10,3 +10,3 @@ ice_rx_queue_setup\n-\tq->nb_desc = n;\n+\tq->nb_desc = RTE_MIN(n, ICE_MAX_RING_DESC);\n"
        + "".join(f"+\tline_{i} = {i};\n" for i in range(400)))
L1 = {"subsystem": "net/ice", "change_type": "fix", "complexity": "small"}
NBS = ["net/ice: fix Rx queue setup", "net/i40e: fix ring size check"]


def test_prompt_holds_the_labels_the_neighbours_and_a_bounded_diff():
    backend = ScriptedBackend("net/ice: fix descriptor count\nsecond line")
    draft_subjects(backend, [L1], [NBS], [DIFF])
    (system, user, params), = backend.calls
    for text in ("net/ice", "fix", "small", *NBS, "drivers/net/ice/ice_rxtx.c", "RTE_MIN(n, ICE_MAX_RING_DESC)"):
        assert text in user
    assert "line_399" not in user and len(user) < 2000    # the diff view is bounded
    assert params.max_tokens <= 32


def test_first_line_is_the_subject_and_provenance_is_recorded():
    d = draft(ScriptedBackend('"net/ice: fix descriptor count"\n\nLonger body text.'), [L1], [NBS], [DIFF])
    assert d.subjects == ["net/ice: fix descriptor count"]
    p = d.provenance[0]
    assert p["template_hash"] == SUBJECT_TEMPLATE.hash and p["backend"] == "scripted" and p["model"] == "scripted-1"
    assert p["fallback"] == ""


@pytest.mark.parametrize("raw,subject", [("Subject: 'fix the count'", "fix the count"),
                                         ("\n\n  `net/ice: x`  \nmore", "net/ice: x")])
def test_parse_subject(raw, subject):
    assert parse_subject(raw) == subject


def test_empty_answer_falls_back_to_nngen_and_says_so():
    d = draft(ScriptedBackend("   \n  "), [L1], [NBS], [DIFF], force_prefix=False)
    assert d.subjects == [NBS[0]]
    assert d.provenance[0]["fallback"].startswith("nngen")


def test_prefix_pair_forces_level1_prefix_and_bare_pair_gives_none():
    backend = ScriptedBackend("ethdev: fix descriptor count")
    forced = draft(backend, [L1], [NBS], [DIFF], force_prefix=True)
    assert forced.subjects == ["net/ice: fix descriptor count"]
    bare = draft(backend, [{**L1, "subsystem": ""}], [NBS], [DIFF], force_prefix=False)
    assert bare.subjects == ["ethdev: fix descriptor count"]
    assert "Subsystem: net/ice" not in backend.calls[-1][1]


def test_lengths_must_agree():
    with pytest.raises(InputError):
        draft_subjects(ScriptedBackend("x"), [L1], [], [DIFF])
