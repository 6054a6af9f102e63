"""Resilience mixins: Retry, CircuitBreaker, Timeout, RateLimiter."""

import asyncio
import threading
from typing import Any

from kforge.mixins.components._effects import side_effect_count, status
from kforge.mixins.components.base import CircuitOpen, Env, Mixin, RateLimited, Request, TransientError


class RetryMixin(Mixin):
    """Re-runs the wrapped call (side effects included) up to three times on transient errors."""

    category = "resilience"
    tags = ("retry", "resilience")
    attempts = 3

    def _note(self, request: Request, attempt: int, exc: Exception) -> None:
        if attempt > 0 and isinstance(exc, (CircuitOpen, RateLimited)):
            self.__dict__.setdefault("_amplified", set()).add(request.rid)

    def process(self, request: Request) -> Any:
        for attempt in range(self.attempts):
            try:
                return super().process(request)
            except TransientError:
                if attempt == self.attempts - 1:
                    raise
            except (CircuitOpen, RateLimited) as exc:
                self._note(request, attempt, exc)
                raise
        raise AssertionError("unreachable")

    async def aprocess(self, request: Request) -> Any:
        for attempt in range(self.attempts):
            try:
                return await super().aprocess(request)
            except TransientError:
                if attempt == self.attempts - 1:
                    raise
            except (CircuitOpen, RateLimited) as exc:
                self._note(request, attempt, exc)
                raise
        raise AssertionError("unreachable")

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        return ["retry_amplified"] if self.__dict__.get("_amplified") else []


class CircuitBreakerMixin(Mixin):
    """Opens after two consecutive failures and then rejects calls."""

    category = "resilience"
    tags = ("circuit-breaker", "resilience")
    threshold = 2

    def _before(self) -> None:
        if getattr(self, "_failures", 0) >= self.threshold:
            raise CircuitOpen("circuit open")

    def _after(self, ok: bool) -> None:
        self._failures = 0 if ok else getattr(self, "_failures", 0) + 1

    def process(self, request: Request) -> Any:
        self._before()
        try:
            out = super().process(request)
        except Exception:
            self._after(False)
            raise
        self._after(True)
        return out

    async def aprocess(self, request: Request) -> Any:
        self._before()
        try:
            out = await super().aprocess(request)
        except Exception:
            self._after(False)
            raise
        self._after(True)
        return out


class TimeoutMixin(Mixin):
    """Bounds call duration: a worker thread on the sync path, ``asyncio.wait_for`` on the async one.
    A timed-out sync call cannot be cancelled: its thread runs on."""

    category = "resilience"
    tags = ("timeout", "resilience")

    def process(self, request: Request) -> Any:
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["out"] = super(TimeoutMixin, self).process(request)
            except BaseException as exc:  # handed back to the caller below
                box["err"] = exc

        worker = threading.Thread(target=target, daemon=True)
        self.env.threads.append(worker)
        worker.start()
        worker.join(self.env.timeout_s)
        if worker.is_alive():
            raise TimeoutError(f"request {request.rid} timed out")
        if "err" in box:
            raise box["err"]
        return box["out"]

    async def aprocess(self, request: Request) -> Any:
        try:
            return await asyncio.wait_for(super().aprocess(request), self.env.timeout_s)
        except TimeoutError:
            raise TimeoutError(f"request {request.rid} timed out") from None

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        for t in env.threads:
            t.join(1.0)
        for r in requests:
            st = status(env, r.rid)
            if st == ("error", "TimeoutError") and side_effect_count(env, self, r.rid) > 0:
                return ["effect_after_timeout"]
        return []


class RateLimiterMixin(Mixin):
    """A token bucket per instance (capacity from the environment, no refill within a scenario)."""

    category = "resilience"
    tags = ("rate-limit", "resilience")

    def _take(self) -> None:
        if "_tokens" not in self.__dict__:
            self._tokens = self.env.rate_capacity
        if self._tokens <= 0:
            raise RateLimited("rate limit exceeded")
        self._tokens -= 1

    def process(self, request: Request) -> Any:
        self._take()
        return super().process(request)

    async def aprocess(self, request: Request) -> Any:
        self._take()
        return await super().aprocess(request)
