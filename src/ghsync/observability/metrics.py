"""Prometheus metrics of the service, exposed at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("ghsync_http_requests_total", "API requests served", ["method", "route", "status"])
HTTP_LATENCY = Histogram("ghsync_http_request_duration_seconds", "API request latency", ["method", "route"])
VERSIONS_CREATED = Counter("ghsync_versions_created_total", "Versions created in local stores", ["source"])
