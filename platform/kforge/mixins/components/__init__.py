"""The shipped mixins (16, four categories) and node base classes (4)."""

from kforge.mixins.components.base import Env, FailurePlan, Mixin, NodeBase, Request
from kforge.mixins.components.business import AuditMixin, AuthorizationMixin, SecurityMixin, ValidationMixin
from kforge.mixins.components.data_access import ConnectionMixin, RepositoryMixin, TransactionMixin
from kforge.mixins.components.infrastructure import (
    CachingMixin,
    EventBusMixin,
    HealthCheckMixin,
    LoggingMixin,
    MetricsMixin,
)
from kforge.mixins.components.nodes import NODE_TYPES
from kforge.mixins.components.resilience import (
    CircuitBreakerMixin,
    RateLimiterMixin,
    RetryMixin,
    TimeoutMixin,
)

BUILTIN_MIXINS: dict[str, type[Mixin]] = {
    cls.__name__.removesuffix("Mixin"): cls
    for cls in (CachingMixin, LoggingMixin, MetricsMixin, HealthCheckMixin, EventBusMixin,
                RetryMixin, CircuitBreakerMixin, TimeoutMixin, RateLimiterMixin,
                ValidationMixin, SecurityMixin, AuthorizationMixin, AuditMixin,
                TransactionMixin, ConnectionMixin, RepositoryMixin)
}
BUILTIN_NODES = dict(NODE_TYPES)

__all__ = ["BUILTIN_MIXINS", "BUILTIN_NODES", "Env", "FailurePlan", "Mixin", "NodeBase", "Request"]
