"""Rule suggestion: Drain templates merged by sentence embeddings (issue 20)."""

import re

import numpy as np
import pytest
from kforge.errors import InputError
from kforge.healing.rules import RuleEngine
from kforge.healing.suggest import merge_templates, suggest_rules, template_text


def _tb(exc: str, msg: str) -> dict[str, str]:
    return {"traceback": f"Traceback (most recent call last):\n  File \"nb.py\", line 3, in <module>\n    run()\n"
                         f"{exc}: {msg}\n", "cause": exc}


# Drain splits the two widget messages (different lengths); neither alone reaches min_support=2
ROWS = [_tb("WidgetFrobError", "widget frobnication failed badly"),
        _tb("WidgetFrobError", "the widget frobnication has failed in stage two"),
        _tb("QuotaGoneError", "disk quota exceeded for volume")]


def fake_embed(texts: list[str]) -> np.ndarray:
    """Texts naming a widget point one way, the rest another."""
    return np.asarray([[1.0, 0.0] if re.search(r"widget", t, re.I) else [0.0, 1.0] for t in texts], dtype=np.float32)


def test_without_an_encoder_drain_alone_finds_no_rule():
    assert RuleEngine.default().match_row(ROWS[0]) is None   # the rows are ones no shipped rule knows
    assert suggest_rules(ROWS, RuleEngine.default(), label="cause") == []


def test_merged_templates_become_one_rule_matching_both_messages():
    sugg = suggest_rules(ROWS, RuleEngine.default(), label="cause", embed=fake_embed)
    assert len(sugg) == 1
    s = sugg[0]
    assert s["support"] == 2 and s["coverage"] == 2 and s["precision"] == 1.0
    assert len(s["templates"]) == 2 and s["template"] == s["templates"][0]
    rx = re.compile(s["pattern"])
    assert rx.search("WidgetFrobError: widget frobnication failed badly")
    assert rx.search("WidgetFrobError: the widget frobnication has failed in stage two")
    assert not rx.search("QuotaGoneError: disk quota exceeded for volume")


def test_merge_respects_threshold_and_kind():
    templates = {1: "A widget broke", 2: "the widget broke again", 3: "disk full"}
    kinds = {1: "python", 2: "python", 3: "python"}
    assert merge_templates(templates, kinds, fake_embed, threshold=0.9) == {1: 1, 2: 1, 3: 3}
    assert merge_templates(templates, {**kinds, 2: "kernel"}, fake_embed, threshold=0.9) == {1: 1, 2: 2, 3: 3}

    def tilted(texts: list[str]) -> np.ndarray:   # cosine 0.8 between the two widget templates
        return np.asarray([[1.0, 0.0] if t.startswith("A") else [0.8, 0.6] if "widget" in t else [0.0, -1.0]
                           for t in texts])

    assert merge_templates(templates, kinds, tilted, threshold=0.9) == {1: 1, 2: 2, 3: 3}
    assert merge_templates(templates, kinds, tilted, threshold=0.75) == {1: 1, 2: 1, 3: 3}
    with pytest.raises(InputError, match="merge_threshold"):
        merge_templates(templates, kinds, fake_embed, threshold=0.0)


def test_template_text_drops_wildcards():
    assert template_text("KeyError: <*> not in <*>") == "KeyError: not in"
