"""Layers: one small class per file, each reading like a page of the course."""
