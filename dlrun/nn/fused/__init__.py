"""Fused training steps: the fast path, planned in one place (see plan.py)."""
