"""The four node base classes: EFFECT, COMPUTE, REDUCER, ORCHESTRATOR.

Each one, alone, satisfies its own contract in every scenario; what breaks is the composition.
"""

import asyncio
from collections import Counter
from typing import Any

from kforge.mixins.components.base import Env, NodeBase, Request


def _ok_ids(env: Env) -> set[int]:
    return {rid for rid, (status, _) in env.results.items() if status == "ok"}


class _Steps(NodeBase):
    def handle(self, request: Request) -> Any:
        self.env.failures.maybe_fail("before")
        self.env.work()
        out = self._apply(request)
        self.env.failures.maybe_fail("after")
        return out

    async def ahandle(self, request: Request) -> Any:
        self.env.failures.maybe_fail("before")
        await self.env.awork()
        out = self._apply(request)
        self.env.failures.maybe_fail("after")
        return out


class ComputeNode(_Steps):
    """Pure computation: the answer is a function of the input only."""

    node_type = "COMPUTE"

    def _apply(self, request: Request) -> Any:
        return request.value * 2 + 1

    def node_invariants(self, env: Env, requests: list[Request]) -> list[str]:
        by_id = {r.rid: r for r in requests}
        for rid, (status, value) in env.results.items():
            if status == "ok" and value != by_id[rid].value * 2 + 1:
                return ["wrong_result"]
        return []


class EffectNode(_Steps):
    """Writes to the external store once per request."""

    node_type = "EFFECT"
    side_effects = True

    def _apply(self, request: Request) -> Any:
        self.env.store.write(request.rid, request.key, request.value)
        return "written"

    def node_invariants(self, env: Env, requests: list[Request]) -> list[str]:
        writes = Counter(rid for rid, _, _ in env.store.committed)
        for rid in _ok_ids(env):
            if writes[rid] == 0:
                return ["missing_side_effect"]
            if writes[rid] > 1:
                return ["duplicate_side_effect"]
        if any(n > 1 for n in writes.values()):
            return ["duplicate_side_effect"]
        return []


class ReducerNode(_Steps):
    """Folds requests into running totals per key (state lives on the node)."""

    node_type = "REDUCER"
    state_modifying = True

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.totals: dict[str, int] = {}
        self.applied: list[int] = []

    def _apply(self, request: Request) -> Any:
        self.totals[request.key] = self.totals.get(request.key, 0) + request.value
        self.applied.append(request.rid)
        return self.totals[request.key]

    def node_invariants(self, env: Env, requests: list[Request]) -> list[str]:
        applied = Counter(self.applied)
        for rid in _ok_ids(env):
            if applied[rid] == 0:
                return ["stale_state"]
            if applied[rid] > 1:
                return ["double_applied"]
        expected: dict[str, int] = {}
        for r in requests:
            expected[r.key] = expected.get(r.key, 0) + r.value * applied[r.rid]
        if any(self.totals.get(k, 0) != v for k, v in expected.items()):
            return ["state_mismatch"]
        return []


class OrchestratorNode(_Steps):
    """Runs two dependent steps per request (prepare, then finish)."""

    node_type = "ORCHESTRATOR"
    side_effects = True

    def _apply(self, request: Request) -> Any:
        self.env.store.write(request.rid, request.key + ":prepare", 1)
        self.env.failures.maybe_fail("between")
        self.env.store.write(request.rid, request.key + ":finish", 1)
        return "done"

    async def ahandle(self, request: Request) -> Any:
        self.env.failures.maybe_fail("before")
        self.env.store.write(request.rid, request.key + ":prepare", 1)
        await asyncio.gather(self.env.awork(), self.env.awork())
        self.env.failures.maybe_fail("between")
        self.env.store.write(request.rid, request.key + ":finish", 1)
        self.env.failures.maybe_fail("after")
        return "done"

    def node_invariants(self, env: Env, requests: list[Request]) -> list[str]:
        steps = Counter((rid, key.rsplit(":", 1)[1]) for rid, key, _ in env.store.committed)
        for rid in _ok_ids(env):
            if steps[(rid, "prepare")] != 1 or steps[(rid, "finish")] != 1:
                return ["duplicate_side_effect" if steps[(rid, "prepare")] > 1 else "missing_side_effect"]
        for r in requests:
            if steps[(r.rid, "finish")] > steps[(r.rid, "prepare")]:
                return ["steps_out_of_order"]
        return []


NODE_TYPES: dict[str, type[NodeBase]] = {
    "EFFECT": EffectNode, "COMPUTE": ComputeNode, "REDUCER": ReducerNode, "ORCHESTRATOR": OrchestratorNode,
}
