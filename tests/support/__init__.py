"""Shared helpers for ghsync's tests (schema validators against GitHub's published descriptions)."""
