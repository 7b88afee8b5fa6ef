"""dlrun: train neural networks described by YAML files, with hand-written Numba kernels."""

from __future__ import annotations

__version__ = "0.1.0"
