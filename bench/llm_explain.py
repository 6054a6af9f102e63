"""How often does the LLM's recommended action match the simulator's best action, and how often
are its explanations grounded? Over ``--n`` states where the forecast risk crosses the threshold,
on held-out simulator seeds (nothing here was tuned on them). Prints JSON.

Compared, per state:
* the recommender alone (simulate every action on forks, take the cheapest): the reference itself;
* the template explanation (what ``kforge telemetry explain`` falls back to);
* the LLM given the full state (with the simulated outcomes and the best action): does it relay it,
  and are its numbers grounded;
* the LLM without the simulated outcomes ("blind"): does it infer the best action from pressure,
  risk and features alone; against always answering the most common best action.

    .venv/bin/python bench/llm_explain.py --n 24 [--backend openai --base-url URL --model M]
"""

import argparse
import json
import time
from collections import Counter

from kforge.llm.base import GenParams, LLMConfig, make_backend
from kforge.telemetry.explain import ACTIONS, explain, states_from_simulation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--seeds", default="300,301,302,303")
    ap.add_argument("--workloads", default="leak,burst,fragmenting")
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--warmup", type=float, default=60.0, help="no state in a run's first seconds")
    ap.add_argument("--backend", default="embedded")
    ap.add_argument("--base-url", default="")
    ap.add_argument("--model", default="")
    ap.add_argument("--max-tokens", type=int, default=80)
    a = ap.parse_args()
    t0 = time.perf_counter()
    states = states_from_simulation(a.workloads.split(","), [int(s) for s in a.seeds.split(",")], a.duration,
                                    per_run=1, threshold=a.threshold, warmup_s=a.warmup)[: a.n]
    sim_s = time.perf_counter() - t0
    backend = make_backend(LLMConfig.from_env(backend=a.backend, base_url=a.base_url, model=a.model))
    params = GenParams(max_tokens=a.max_tokens)
    rows, prov = [], None
    t1 = time.perf_counter()
    for st in states:
        full = explain(st, backend, params, include_outcomes=True)
        blind = explain(st, backend, params, include_outcomes=False)
        prov = full.answer.provenance() if full.answer else prov
        rows.append({"run": st.run_id, "t_s": st.t_s, "best": st.best_action,
                     "template_action": explain(st, None).action,
                     "full_action": full.llm_action, "full_grounded": not full.ungrounded, "full_accepted": full.source == "llm",
                     "blind_action": blind.llm_action, "blind_grounded": not blind.ungrounded,
                     "full_text": full.llm_text[:300], "blind_text": blind.llm_text[:300]})
    n = max(len(rows), 1)
    best = Counter(r["best"] for r in rows)
    majority, majority_n = best.most_common(1)[0] if best else ("", 0)

    def rate(key: str) -> float:
        return sum(r[key] == r["best"] for r in rows) / n

    out = {"states": len(rows), "simulation_s": round(sim_s, 1), "llm_s": round(time.perf_counter() - t1, 1),
           "provenance": prov, "best_action_counts": dict(best),
           "agreement_with_simulator_best": {
               "recommender_alone": rate("best"), "template": rate("template_action"),
               "llm_full_state": rate("full_action"), "llm_blind": rate("blind_action"),
               f"always_{majority}_(majority)": majority_n / n,
               **{f"always_{act}": best.get(act, 0) / n for act in ACTIONS}},
           "llm_full_state": {"grounded": sum(r["full_grounded"] for r in rows) / n,
                              "action_parsed": sum(r["full_action"] is not None for r in rows) / n,
                              "accepted_llm_text": sum(r["full_accepted"] for r in rows) / n,
                              "actions": dict(Counter(str(r["full_action"]) for r in rows))},
           "llm_blind": {"grounded": sum(r["blind_grounded"] for r in rows) / n,
                         "action_parsed": sum(r["blind_action"] is not None for r in rows) / n,
                         "actions": dict(Counter(str(r["blind_action"]) for r in rows))},
           "examples": rows[:3]}
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
