"""Grounded explanations: every number the LLM states must come from the state, its action must be the
simulator's best, else the answer is flagged and the template (grounded by construction) is used."""

import json
import re
from pathlib import Path

import pytest
from kforge.cli.main import main
from kforge.llm.scripted import ScriptedBackend
from kforge.llm.server import LLMServer
from kforge.telemetry.explain import (
    State,
    explain,
    facts,
    numbers_in,
    parse_action,
    states_from_simulation,
    template_explanation,
    ungrounded_numbers,
)


def _state(best: str = "reclaim") -> State:
    outcomes = {"nothing": {"cost": 100.0, "ooms": 1.0}, "compact": {"cost": 101.2, "ooms": 1.0},
                "reclaim": {"cost": 2.345, "ooms": 0.0}, "kill_largest": {"cost": 38.0, "ooms": 0.0}}
    return State("leak-7", 152.0, {"free_frac": 0.0312, "avail_frac": 0.781, "frag_index": 0.42, "stall_ms_5s": 120.5,
                                   "alloc_failures_30s": 3.0},
                 0.78125, 0.5, "heuristic", [("d_free_5", -0.012, 0.4), ("frag_index", 0.42, 0.3)], outcomes, best)


@pytest.mark.parametrize(("answer", "bad"), [
    ("Risk is 0.781 and free memory 0.031.", []),
    ("Risk is 0.78, available 78%, stall 120.5 ms.", []),        # rounded and percentage forms of stated numbers
    ("d_free_5 and d_frag_10 are rising.", []),                   # digits inside feature names are not numbers
    ("Risk is 0.93 and 42 processes will die.", ["0.93", "42"]),  # invented numbers
    ("Free memory is 3.1%.", []),                                # 0.031 as a percentage
    ("Free memory is 31%.", ["31%"]),
])
def test_grounding_check(answer, bad) -> None:
    assert ungrounded_numbers(answer, facts(_state())) == bad


def test_numbers_in_skips_identifiers() -> None:
    assert numbers_in("SmolLM2 says d_free_5 = -0.012 at t = 152 s.") == ["-0.012", "152"]


@pytest.mark.parametrize(("text", "action"), [
    ("Memory is low.\naction: reclaim", "reclaim"), ("Action: kill_largest", "kill_largest"),
    ("Risk is low.\nAction: do nothing", "nothing"), ("action: compact, then reclaim", "compact"),
    ("The risk of an OOM kill is high; we should compact.", None),   # no action line: prose recommends nothing
    ("action: restart the box", None),
])
def test_parse_action(text, action) -> None:
    assert parse_action(text) == action


def test_the_template_is_grounded_and_recommends_the_best_action() -> None:
    for best in ("reclaim", "nothing"):
        s = _state(best)
        text = template_explanation(s)
        assert ungrounded_numbers(text, facts(s)) == [] and parse_action(text) == best


def _grounded_reply(system: str, user: str) -> str:
    best = re.search(r"simulator's best action: (\w+)", user).group(1)
    risk = re.search(r"within 20 s: ([\d.]+)", user).group(1)
    return f"The forecast risk is {risk}, so act now.\naction: {best}"


def test_explain_accepts_a_grounded_answer_and_rejects_invented_numbers_and_wrong_actions() -> None:
    s = _state()
    ok = explain(s, ScriptedBackend(_grounded_reply))
    assert ok.source == "llm" and ok.action == "reclaim" and ok.agrees and ok.answer.template_hash
    invented = explain(s, ScriptedBackend("Risk is 0.97, 12 OOM kills expected.\naction: reclaim"))
    assert invented.source == "template" and invented.ungrounded == ["0.97", "12"]
    assert invented.text == template_explanation(s) and invented.action == "reclaim"
    wrong = explain(s, ScriptedBackend("Risk is 0.781.\naction: compact"))
    assert wrong.source == "template" and wrong.agrees is False and wrong.llm_action == "compact"
    assert explain(s, None).source == "template"


def test_states_from_the_simulator_carry_the_recommenders_choice() -> None:
    states = states_from_simulation(["burst"], [100], duration_s=120, per_run=1, threshold=0.4)
    assert states and all(st.best_action in st.outcomes for st in states)
    best = states[0]
    assert best.outcomes[best.best_action]["cost"] == min(o["cost"] for o in best.outcomes.values())


def test_cli_explain_over_http_flags_an_ungrounded_answer(kforge_home: Path, capsys) -> None:
    backend = ScriptedBackend("The risk is 0.9999 and 77 processes will be killed.\naction: nothing")
    with LLMServer(backend) as srv:
        rc = main(["--home", str(kforge_home), "telemetry", "explain", "burst", "--duration", "120", "--threshold", "0.4",
                   "--backend", "openai", "--base-url", srv.url, "--model", "m", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["explanation"]["source"] == "template"
    assert {"0.9999", "77"} <= set(out["explanation"]["ungrounded"])
    assert out["explanation"]["provenance"]["template"] == "telemetry-explain-v1"
    assert "simulator's best action" in backend.calls[0][1]


def test_cli_explain_unreachable_server_is_one_line(kforge_home: Path, capsys) -> None:
    rc = main(["--home", str(kforge_home), "telemetry", "explain", "burst", "--duration", "60",
               "--backend", "ollama", "--base-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("kforge: error: cannot reach the LLM server") and err.count("\n") == 1
