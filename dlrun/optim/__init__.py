"""Optimizers, learning-rate schedules, regularizers and gradient clipping."""
