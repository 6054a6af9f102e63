"""The runtime the mixins and nodes run in: requests, an environment, errors, node base classes.

Everything a composed node does goes through :class:`Env` (an external store with transactions,
a log, an event bus, an audit trail, a connection pool, failure injection), so the exercise
harness can check afterwards what actually happened.
"""

import asyncio
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any


class TransientError(RuntimeError):
    """An injected, retryable failure (network blip, deadlock victim...)."""


class PermissionDenied(RuntimeError):
    pass


class InvalidRequest(ValueError):
    pass


class RateLimited(RuntimeError):
    pass


class CircuitOpen(RuntimeError):
    pass


class PoolExhausted(RuntimeError):
    pass


EXPECTED_ERRORS = (TransientError, PermissionDenied, InvalidRequest, RateLimited, CircuitOpen,
                   PoolExhausted, TimeoutError)


@dataclass(frozen=True)
class Request:
    key: str
    value: int
    user: str = "alice"
    token: str = "tok-secret-0000"
    rid: int = 0

    def masked(self) -> "Request":
        return replace(self, token="***")


class FailurePlan:
    """Fail the n-th calls at a named point (``before`` or ``after`` the node's side effect)."""

    def __init__(self, fail_at: dict[str, set[int]] | None = None) -> None:
        self.fail_at = {k: set(v) for k, v in (fail_at or {}).items()}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def maybe_fail(self, point: str) -> None:
        with self._lock:
            n = self.calls.get(point, 0)
            self.calls[point] = n + 1
        if n in self.fail_at.get(point, set()):
            raise TransientError(f"injected failure at {point} call {n}")


class Store:
    """An external key/value store with optional transactions bound to the current thread."""

    def __init__(self) -> None:
        self.committed: list[tuple[int, str, Any]] = []     # (request id, key, value)
        self.rolled_back: list[int] = []
        self._local = threading.local()
        self._next_tx = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> "Tx | None":
        return getattr(self._local, "tx", None)

    def begin(self) -> "Tx":
        with self._lock:
            self._next_tx += 1
            tx = Tx(self, self._next_tx)
        self._local.tx = tx
        return tx

    def end(self) -> None:
        self._local.tx = None

    def write(self, rid: int, key: str, value: Any) -> None:
        tx = self.current
        if tx is not None:
            tx.pending.append((rid, key, value))
        else:
            with self._lock:
                self.committed.append((rid, key, value))


@dataclass
class Tx:
    store: Store
    tx_id: int
    pending: list[tuple[int, str, Any]] = field(default_factory=list)

    def commit(self) -> None:
        with self.store._lock:
            self.store.committed.extend(self.pending)
        self.pending = []

    def rollback(self) -> None:
        with self.store._lock:
            self.store.rolled_back.extend(r for r, _, _ in self.pending)
        self.pending = []


class Pool:
    def __init__(self, size: int) -> None:
        self.size = size
        self.in_use = 0
        self.opened = False
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            if not self.opened:
                raise RuntimeError("connection pool used before it was opened (on_start did not run)")
            if self.in_use >= self.size:
                raise PoolExhausted(f"all {self.size} connections in use")
            self.in_use += 1
            return self.in_use

    def release(self) -> None:
        with self._lock:
            self.in_use -= 1


class Env:
    """What a composed node can touch; the harness inspects it after a scenario."""

    def __init__(self, failures: FailurePlan | None = None, delay_s: float = 0.0, timeout_s: float = 0.05,
                 allowed_users: frozenset[str] = frozenset({"alice"}), rate_capacity: int = 4,
                 pool_size: int = 2) -> None:
        self.failures = failures or FailurePlan()
        self.delay_s = delay_s
        self.timeout_s = timeout_s
        self.allowed_users = allowed_users
        self.rate_capacity = rate_capacity
        self.store = Store()
        self.pool = Pool(pool_size)
        self.log: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.results: dict[int, Any] = {}        # what the caller received per request id
        self.threads: list[threading.Thread] = []

    def work(self) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)

    async def awork(self) -> None:
        await asyncio.sleep(self.delay_s)


class Mixin:
    """Marker base of every mixin. Subclasses set ``category`` and ``tags`` and may define
    ``invariants(self, env, requests)`` returning a list of violated-contract reasons."""

    category: str = "custom"
    tags: tuple[str, ...] = ()

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        return []


class NodeBase:
    """Base of the four node types. Mixins wrap :meth:`process` / :meth:`aprocess` cooperatively
    and chain the lifecycle hooks (``on_start``, ``on_stop``) through ``super()``."""

    node_type: str = "BASE"
    state_modifying: bool = False
    side_effects: bool = False

    def __init__(self, env: Env) -> None:
        self.env = env
        self.hooks_run: list[str] = []

    def on_start(self) -> None:
        self.hooks_run.append("node.on_start")

    def on_stop(self) -> None:
        self.hooks_run.append("node.on_stop")

    def process(self, request: Request) -> Any:
        return self.handle(request)

    async def aprocess(self, request: Request) -> Any:
        return await self.ahandle(request)

    def handle(self, request: Request) -> Any:
        raise NotImplementedError

    async def ahandle(self, request: Request) -> Any:
        await self.env.awork()
        return self._apply(request)

    def _apply(self, request: Request) -> Any:
        raise NotImplementedError

    def node_invariants(self, env: Env, requests: list[Request]) -> list[str]:
        return []
