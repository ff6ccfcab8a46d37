"""Liveness and readiness probes: fast and unauthenticated. Readiness includes the verdict
of `vod_check` (harmless VOD calls), kept in the cache: VOD is asked at most once every
VOD_CHECK_CACHE_SECONDS (60 s while the verdict is failing)."""

import logging
import time

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .checks import missing_static_assets
from .services import credentials_resolvable, vod_check_verdict

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key = "readyz-probe"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("the cache did not return what was stored")


def _vod_credentials() -> None:
    if not credentials_resolvable():
        raise RuntimeError("no AccessKey could be resolved from the credentials chain")


def _vod_configuration() -> None:
    if not credentials_resolvable():
        return  # vod_credentials names that; VOD cannot be asked without keys
    verdict = vod_check_verdict()
    if verdict is not None and not verdict["ok"]:
        wrong = [finding["setting"] for finding in verdict["findings"] if not finding["ok"]]
        raise RuntimeError(f"vod_check failed at {verdict['at']}: {'; '.join(wrong)}")


class NotReady(Exception):
    """A failure whose description names nothing secret: shown to the caller."""


def _static_files() -> None:
    # A page whose script is missing fails only in the browser: say so here (issue 16).
    if missing := missing_static_assets():
        raise NotReady(f"missing: {', '.join(missing)}")


_CHECKS = {"database": _database, "cache": _cache, "vod_credentials": _vod_credentials,
           "vod_configuration": _vod_configuration, "static_files": _static_files}


@never_cache
@require_GET
def readyz(request):
    """Ready when the database, the cache and VOD credentials all work; 503 naming the
    failing parts otherwise. Failure details go to the log, not to the caller."""
    results, failing = {}, []
    for name, check in _CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except NotReady as problem:
            logger.error("readiness check %s failed: %s", name, problem)
            results[name] = f"fail: {problem}"
            failing.append(name)
        except Exception:  # noqa: BLE001 - any failure means "not ready"; logged below
            logger.exception("readiness check %s failed", name)
            results[name] = "fail"
            failing.append(name)
        else:
            results[name] = f"ok ({(time.perf_counter() - started) * 1000:.1f} ms)"
    body = {"status": "ready" if not failing else "not ready", "checks": results}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
