"""Datasets: synthetic ones generated from the seed, file ones found or fetched."""
