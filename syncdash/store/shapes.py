"""Where the JSON shapes of runs and item errors used to live; they are the read model's now
(`syncdash.store.queries`). Kept only for api/metrics.py, which imports COUNTS from here until it is rebuilt on
prometheus_client."""

from __future__ import annotations

from syncdash.store.models import COUNTS
from syncdash.store.queries import error_json, iso, run_json

__all__ = ["COUNTS", "error_json", "iso", "run_json"]
