"""Datasets: synthetic ones generated from the seed, file ones found or fetched."""

# every dataset module, imported so that each registers its datasets by decorator
from dlrun.data import images, sequences, synthetic  # noqa: F401, E402
