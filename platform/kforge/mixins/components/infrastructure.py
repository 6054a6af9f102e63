"""Infrastructure mixins: Caching, Logging, Metrics, HealthCheck, EventBus."""

from typing import Any

from kforge.mixins.components._effects import status
from kforge.mixins.components.base import Env, Mixin, Request


class CachingMixin(Mixin):
    """Memoises results by request key and value (not by user, not by node state)."""

    category = "infrastructure"
    tags = ("caching", "performance")

    def process(self, request: Request) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        k = (request.key, request.value)
        if k in cache:
            return cache[k]
        out = super().process(request)
        cache[k] = out
        return out

    async def aprocess(self, request: Request) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        k = (request.key, request.value)
        if k in cache:
            return cache[k]
        out = await super().aprocess(request)
        cache[k] = out
        return out


class LoggingMixin(Mixin):
    """Logs every request and its outcome (the request's repr, token included)."""

    category = "infrastructure"
    tags = ("logging", "observability")

    def on_start(self) -> None:
        self.env.log.append(f"{type(self).__name__} starting")
        self.hooks_run.append("LoggingMixin.on_start")
        super().on_start()

    def process(self, request: Request) -> Any:
        self.env.log.append(f"handling {request!r}")
        try:
            out = super().process(request)
        except Exception as exc:
            self.env.log.append(f"failed {request.rid}: {exc!r}")
            raise
        self.env.log.append(f"done {request.rid}")
        return out

    async def aprocess(self, request: Request) -> Any:
        self.env.log.append(f"handling {request!r}")
        try:
            out = await super().aprocess(request)
        except Exception as exc:
            self.env.log.append(f"failed {request.rid}: {exc!r}")
            raise
        self.env.log.append(f"done {request.rid}")
        return out


class MetricsMixin(Mixin):
    """Counts calls and errors; the counters must match what callers issued."""

    category = "infrastructure"
    tags = ("metrics", "observability")

    def _counters(self) -> dict[str, int]:
        return self.__dict__.setdefault("metrics", {"calls": 0, "errors": 0})

    def process(self, request: Request) -> Any:
        m = self._counters()
        m["calls"] += 1
        try:
            return super().process(request)
        except Exception:
            m["errors"] += 1
            raise

    async def aprocess(self, request: Request) -> Any:
        m = self._counters()
        m["calls"] += 1
        try:
            return await super().aprocess(request)
        except Exception:
            m["errors"] += 1
            raise

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        calls = self._counters()["calls"]
        if calls < len(requests):
            return ["metrics_undercount"]
        if calls > len(requests):
            return ["metrics_overcount"]
        return []


class HealthCheckMixin(Mixin):
    """Tracks recent failures and reports health. Its ``on_start`` does not chain to ``super()``."""

    category = "infrastructure"
    tags = ("health", "observability")

    def on_start(self) -> None:
        self.healthy = True
        self._failures = []
        self.hooks_run.append("HealthCheckMixin.on_start")

    def _record(self, exc: Exception) -> None:
        self._failures.append(repr(exc))
        self.healthy = len(self._failures) < 3

    def process(self, request: Request) -> Any:
        try:
            return super().process(request)
        except Exception as exc:
            self._record(exc)
            raise

    async def aprocess(self, request: Request) -> Any:
        try:
            return await super().aprocess(request)
        except Exception as exc:
            self._record(exc)
            raise


class EventBusMixin(Mixin):
    """Publishes a ``processed`` event after each successful request (subscribes in on_start)."""

    category = "infrastructure"
    tags = ("events", "messaging")

    def on_start(self) -> None:
        self._bus_subscribed = True
        self.hooks_run.append("EventBusMixin.on_start")
        super().on_start()

    def _publish(self, request: Request) -> None:
        self.env.events.append({"rid": request.rid, "key": request.key, "payload": repr(request)})

    def process(self, request: Request) -> Any:
        out = super().process(request)
        self._publish(request)
        return out

    async def aprocess(self, request: Request) -> Any:
        out = await super().aprocess(request)
        self._publish(request)
        return out

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        if not getattr(self, "_bus_subscribed", False):
            return ["lifecycle_hook_skipped"]
        seen: dict[int, int] = {}
        for e in env.events:
            seen[e["rid"]] = seen.get(e["rid"], 0) + 1
        for rid, n in seen.items():
            if status(env, rid)[0] != "ok":
                return ["phantom_event"]
            if n > 1:
                return ["duplicate_event"]
        return []
