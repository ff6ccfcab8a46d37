"""GET /metrics: the Prometheus text format, for allowed scrapers only.

Closed by default. A scrape must come from an address in METRICS_ALLOWED_IPS (loopback
unless configured; CIDRs accepted), judged by the same client_ip() rule as the audit trail
and the throttles (NUM_PROXIES), and, when METRICS_TOKEN is set, carry
`Authorization: Bearer <METRICS_TOKEN>` (compared in constant time; never logged). Anyone
else gets the same 404 as a URL that does not exist: the endpoint is not advertised.

A plain Django view, not DRF: no authentication classes, throttles or schema entry, and it
touches neither the session nor request.user (no cookie, no Vary, no query). CSRF-exempt so
that a POST from anywhere is a 404 too, not a 403 that tells the route exists.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from functools import lru_cache

import prometheus_client
from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import multiprocess

from ..middleware import client_ip
from .collector import DatabaseCollector

_database = DatabaseCollector()


@lru_cache(maxsize=4)
def _networks(allowed: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _address_allowed(request) -> bool:
    if not (getattr(settings, "NUM_PROXIES", 0) or 0) and request.META.get("HTTP_X_FORWARDED_FOR"):
        # A proxy relayed this request but none is trusted: its REMOTE_ADDR is the proxy's
        # (often loopback), not the client's. Refused rather than let the whole internet in
        # through a proxy on the same host.
        return False
    text = client_ip(request)
    try:
        address = ipaddress.ip_address((text or "").split("%", 1)[0])
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:  # gunicorn bound on [::]
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_IPS)))


def _token_accepted(request) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return True
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Digests first: compare_digest's time then depends on neither token's length.
    return hmac.compare_digest(hashlib.sha256(given.strip().encode("utf-8", "replace")).digest(),
                               hashlib.sha256(expected.encode()).digest())


def scrape_allowed(request) -> bool:
    """Whether `request` may read /metrics: an allowed address, and the token when one is set."""
    # Both are always checked: no early exit to time which one failed.
    address_ok = _address_allowed(request)
    token_ok = _token_accepted(request)
    return address_ok and token_ok


class _Scrape:
    """What one scrape exposes: the counters and histograms (every worker's, added up, in
    multiprocess mode; else this process's registry, with its process metrics), then the
    database's gauges, read by this process only."""

    def collect(self):
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)
        else:
            registry = prometheus_client.REGISTRY
        yield from registry.collect()
        yield from _database.collect()


@csrf_exempt
def metrics(request):
    """The metrics of every worker, or 404 to anyone not allowed (see the module)."""
    if not scrape_allowed(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(generate_latest(_Scrape()), content_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})
