"""Data-access mixins: Transaction, Connection, Repository (which builds on Connection)."""

from typing import Any

from kforge.mixins.components._effects import status
from kforge.mixins.components.base import Env, Mixin, Request


class TransactionMixin(Mixin):
    """Runs each request in a store transaction (bound to the current *thread*): commit on
    success, roll back on any error, including a failed commit."""

    category = "data_access"
    tags = ("transaction", "consistency")

    def _finish(self, tx: Any) -> None:
        try:
            self.env.failures.maybe_fail("commit")
        except Exception:
            tx.rollback()
            self.env.store.end()
            raise
        tx.commit()
        self.env.store.end()

    def process(self, request: Request) -> Any:
        self._tx = tx = self.env.store.begin()
        try:
            out = super().process(request)
        except BaseException:
            tx.rollback()
            self.env.store.end()
            raise
        self._finish(tx)
        return out

    async def aprocess(self, request: Request) -> Any:
        self._tx = tx = self.env.store.begin()
        try:
            out = await super().aprocess(request)
        except BaseException:
            tx.rollback()
            self.env.store.end()
            raise
        self._finish(tx)
        return out

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        for t in env.threads:
            t.join(1.0)
        for r in requests:
            if status(env, r.rid)[0] != "ok" and any(rid == r.rid for rid, _, _ in env.store.committed):
                return ["partial_write"]
        return []


class ConnectionMixin(Mixin):
    """Holds one pooled connection per in-flight request; the pool is opened in on_start."""

    category = "data_access"
    tags = ("connection", "pooling")

    def on_start(self) -> None:
        self.env.pool.opened = True
        self.hooks_run.append("ConnectionMixin.on_start")
        super().on_start()

    def on_stop(self) -> None:
        self.hooks_run.append("ConnectionMixin.on_stop")
        super().on_stop()

    def process(self, request: Request) -> Any:
        self.env.pool.acquire()
        try:
            return super().process(request)
        finally:
            self.env.pool.release()

    async def aprocess(self, request: Request) -> Any:
        self.env.pool.acquire()
        try:
            return await super().aprocess(request)
        finally:
            self.env.pool.release()

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        if env.pool.in_use:
            return ["connection_leak"]
        if any(status(env, r.rid) == ("error", "PoolExhausted") for r in requests):
            return ["pool_exhausted"]
        return []


class RepositoryMixin(ConnectionMixin):
    """Entity access through an identity map; needs a connection, so it extends ConnectionMixin."""

    category = "data_access"
    tags = ("repository", "persistence")

    def on_start(self) -> None:
        self._identity = {}
        self.hooks_run.append("RepositoryMixin.on_start")
        super().on_start()

    def _load(self, request: Request) -> Request:
        self._identity[request.key] = request.value
        return request

    def process(self, request: Request) -> Any:
        return super().process(self._load(request))

    async def aprocess(self, request: Request) -> Any:
        return await super().aprocess(self._load(request))
