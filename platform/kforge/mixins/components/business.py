"""Business mixins: Validation, Security, Authorization, Audit."""

from typing import Any

from kforge.mixins.components._effects import side_effect_count, status
from kforge.mixins.components.base import Env, InvalidRequest, Mixin, PermissionDenied, Request


class ValidationMixin(Mixin):
    """Rejects negative values before anything else sees them."""

    category = "business"
    tags = ("validation", "input")

    def _check(self, request: Request) -> None:
        if request.value < 0:
            raise InvalidRequest(f"value must be >= 0, got {request.value}")

    def process(self, request: Request) -> Any:
        self._check(request)
        return super().process(request)

    async def aprocess(self, request: Request) -> Any:
        self._check(request)
        return await super().aprocess(request)

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        for r in requests:
            if r.value < 0 and (status(env, r.rid)[0] == "ok" or side_effect_count(env, self, r.rid)):
                return ["invalid_input_processed"]
        return []


class SecurityMixin(Mixin):
    """Masks credentials before passing a request on: nothing below it may see the token."""

    category = "business"
    tags = ("security", "secrets")

    def process(self, request: Request) -> Any:
        return super().process(request.masked())

    async def aprocess(self, request: Request) -> Any:
        return await super().aprocess(request.masked())

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        secrets = {r.token for r in requests if r.token != "***"}
        sinks = [*env.log, *(e["payload"] for e in env.events), *(a["request"] for a in env.audit)]
        if any(s in line for s in secrets for line in sinks):
            return ["secret_leaked"]
        return []


class AuthorizationMixin(Mixin):
    """Only users in the policy (loaded in on_start) may run a request."""

    category = "business"
    tags = ("authorization", "access-control")

    def on_start(self) -> None:
        self._policy = frozenset(self.env.allowed_users)
        self.hooks_run.append("AuthorizationMixin.on_start")
        super().on_start()

    def _authorize(self, request: Request) -> None:
        if request.user not in self._policy:
            raise PermissionDenied(f"{request.user} may not do this")

    def process(self, request: Request) -> Any:
        self._authorize(request)
        return super().process(request)

    async def aprocess(self, request: Request) -> Any:
        self._authorize(request)
        return await super().aprocess(request)

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        for r in requests:
            if r.user not in env.allowed_users and (status(env, r.rid)[0] == "ok"
                                                    or side_effect_count(env, self, r.rid)):
                return ["authorization_bypass"]
        return []


class AuditMixin(Mixin):
    """Writes exactly one audit record per request, saying whether it succeeded."""

    category = "business"
    tags = ("audit", "compliance")

    def _record(self, request: Request, ok: bool) -> None:
        self.env.audit.append({"rid": request.rid, "user": request.user, "ok": ok, "request": repr(request)})

    def process(self, request: Request) -> Any:
        try:
            out = super().process(request)
        except Exception:
            self._record(request, False)
            raise
        self._record(request, True)
        return out

    async def aprocess(self, request: Request) -> Any:
        try:
            out = await super().aprocess(request)
        except Exception:
            self._record(request, False)
            raise
        self._record(request, True)
        return out

    def invariants(self, env: Env, requests: list[Request]) -> list[str]:
        for r in requests:
            recs = [a for a in env.audit if a["rid"] == r.rid]
            if not recs:
                return ["audit_missing"]
            if len(recs) > 1:
                return ["audit_duplicate"]
            if recs[0]["ok"] != (status(env, r.rid)[0] == "ok"):
                return ["audit_mismatch"]
        return []
