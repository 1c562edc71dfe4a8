"""Audit trail store and evidence report (no Qt)."""
