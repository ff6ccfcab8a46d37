"""Failures of the services vodportal depends on (other than VOD), in one shape.

A dependency that is down is not the client's fault and not a bug: the API answers 503 with a
`code` naming it (`redis_unavailable`, `database_unavailable`) and `Retry-After`, never 500.
Raised by the lowest layers (the VOD limiter, the throttles); mapped in `uploads.api.errors`.
"""

from __future__ import annotations

from django.db import connection

# How long a client is asked to wait before retrying when a dependency is down.
DEFAULT_RETRY_AFTER_SECONDS = 2


class DependencyUnavailable(Exception):
    """`dependency` (e.g. "redis") could not be used; nothing was done on its account."""

    def __init__(self, dependency: str, message: str = "", *,
                 retry_after: int = DEFAULT_RETRY_AFTER_SECONDS):
        super().__init__(message or f"{dependency} is unavailable")
        self.dependency = dependency
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        """The stable error code clients see: `<dependency>_unavailable`."""
        return f"{self.dependency}_unavailable"


def forget_broken_connections() -> None:
    """After a lost database connection: close this thread's, and with a connection pool
    (settings.DATABASES OPTIONS "pool"), test the pool's idle connections and drop the broken
    ones (psycopg_pool's `check()`).

    A PostgreSQL restart or failover breaks every pooled connection at once. Pooled
    connections are not tested when handed out (that would cost a round trip per request),
    so without this each request would meet a dead one and fail in turn."""
    connection.close()
    pool = getattr(connection, "pool", None)  # the PostgreSQL backend's, when configured
    if pool is not None:
        pool.check()
