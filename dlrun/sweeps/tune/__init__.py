"""Hyper-parameter search with Optuna (the machinery behind ``dlrun tune``).

space.py      --param texts and space files -> parameters Optuna samples
config.py     the base config, one config per trial, the checks before any trial
storage.py    where a study lives: a journal file in the study folder, or a database
study_dir.py  the study folder and the study's identity (resume, or refuse another study)
worker.py     a warm worker process: trials until the budget is spent; pruning; reaping
report.py     a line per trial, the table of the best trials, trials.csv rows
plots.py      Optuna's matplotlib figures of the study
study.py      tune(): validate, open the study, run the workers, report
sweep.py      tuned sweeps: a sweep file's ``tune:`` section
"""
