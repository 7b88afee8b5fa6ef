"""Sweeps: many runs of one experiment, compared (the machinery behind ``dlrun compare``).

spec.py       sweep file -> validated, expanded cells (one resolved config each)
cell.py       run one cell through ``dlrun.training.train.train`` (in any process)
executors.py  where cells run: in this process, local processes, a Dask cluster
index.py      the sweep directory: sweep.yaml, cells.json, lock, resumption
results.py    metrics of a cell, results.csv, aggregation over seeds, the table
plots.py      learning curves of every setting (mean +- std over seeds)
"""
