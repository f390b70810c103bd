"""Helpers for tests that are not fixtures: a test-only source kind (jsonl_kind)."""
