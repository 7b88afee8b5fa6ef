"""What does a ``dlrun tune`` trial cost beyond its training, and how much faster is
``--jobs 2`` than ``--jobs 1``?

    python scripts/bench/tune.py                      # both parts
    python scripts/bench/tune.py overhead --trials 20 --epochs 20
    python scripts/bench/tune.py jobs --trials 24 --repeats 3

overhead: one warm process (the library's ``tune``, one worker, 1 thread) runs
``--trials`` trials of ``configs/quickstart.yaml`` (2-64-64-3 MLP, 1500 spirals,
``--epochs`` epochs, no pruner, lr on a log scale). A trial's cycle is the time from
its start to the next trial's start (Optuna's timestamps): Optuna's ask, the trial's
config, ``train`` (run directory, data, network, epochs, test evaluation, summary),
the per-epoch reports, tell, and the worker's look at the storage. Its training is the
run's own ``seconds`` (the epochs: batches, validation, checkpoints) less the time of the
per-epoch reports to Optuna made inside them. Overhead = cycle - training, median over the trials (the first one, which loads the kernels, left out).
Shown for the default (trial figures skipped) and with ``--run-plots``.

jobs: fresh ``dlrun tune`` processes (as a user runs them) on ``--trials`` trials,
three modes alternating round by round: jobs1 (one process, all cores' threads),
jobs1-1thr (one process, one thread: the fair serial baseline on a busy machine) and
jobs2 (two worker processes, one thread each). Medians of the wall times and the
speed-ups. The machine is shared: the load average is printed with every run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python scripts/bench/tune.py
    sys.path[:0] = [
        str(Path(__file__).resolve().parents[1]),
        str(Path(__file__).resolve().parents[2]),
    ]
    from bench.common import ROOT, listed, make_parser, median
else:
    from .common import ROOT, listed, make_parser, median

CONFIG = ROOT / "configs" / "quickstart.yaml"
PARAM = "optimizer.lr=log:1e-3:0.3"
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MODES = {"jobs1": (1, False), "jobs1-1thr": (1, True), "jobs2": (2, False)}


def overhead(trials: int, epochs: int, run_plots: bool, folder: Path) -> dict[str, float]:
    """Median cycle, training and overhead seconds of a trial (one warm worker)."""
    from dlrun.runs.rundir import RunDir
    from dlrun.sweeps.tune.study import tune

    result = tune(
        CONFIG,
        [PARAM],
        trials=trials,
        pruner="none",
        overrides=[f"train.epochs={epochs}"],
        study_dir=folder,
        threads=1,
        run_plots=run_plots,
    )
    trials_ = sorted(result.study.get_trials(deepcopy=False), key=lambda t: t.number)
    cycles, training, batches = [], [], []
    for t, nxt in zip(trials_[1:], trials_[2:]):  # the first trial loads the kernels
        cycles.append((nxt.datetime_start - t.datetime_start).total_seconds())
        run = RunDir(folder / t.user_attrs["run"]["dir"])
        # the run's seconds hold the trial's per-epoch reports to Optuna: they count as overhead
        training.append(run.summary()["seconds"] - t.user_attrs["run"]["optuna_seconds"])
        batches.append(sum(r["seconds"] for r in run.metrics()))
    over = [c - s for c, s in zip(cycles, training)]
    return {
        "cycle": median(cycles),
        "training": median(training),
        "batches": median(batches),
        "overhead": median(over),
        "all": over,
    }


def no_fsync_env(folder: Path) -> dict[str, str]:
    """An environment whose Python processes (the workers too) skip os.fsync: a
    sitecustomize.py on PYTHONPATH. Diagnostic only: how much of a trial is the disk."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("import os\nos.fsync = lambda fd: None\n")
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{folder}{os.pathsep}{path}" if path else str(folder)}


def run_jobs(
    args: list[str], folder: Path, jobs: int, one_thread: bool, extra: dict[str, str]
) -> float:
    """Wall seconds of one fresh ``dlrun tune`` process."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS and k != "DLRUN_THREADS"}
    env.update(extra)
    if one_thread:
        env.update({k: "1" for k in THREAD_VARS})
    cmd = [sys.executable, "-c", "from dlrun.cli import main; main()", "tune", *args]
    cmd += ["--study-dir", str(folder), "--jobs", str(jobs), "--quiet"]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    shutil.rmtree(folder)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("tune", __doc__)
    parser.add_argument("part", nargs="?", choices=("overhead", "jobs", "both"), default="both")
    parser.add_argument("--trials", type=int, default=None, help="default: 20 / 24")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the jobs modes")
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="jobs part with os.fsync a no-op in every process (how much is the disk?)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_tune_") as tmp:
        if args.part in ("overhead", "both"):
            n = args.trials or 20
            print(f"overhead: {n} trials of quickstart, {args.epochs} epochs, 1 thread", flush=True)
            for plots in (False, True):
                m = overhead(n, args.epochs, plots, Path(tmp) / f"o{int(plots)}")
                print(
                    f"  {'--run-plots' if plots else 'default    '}  cycle {m['cycle']:.3f} s  "
                    f"training {m['training']:.3f} s (batches {m['batches']:.3f} s)  "
                    f"overhead {m['overhead']:.3f} s per trial  (all: {listed(m['all'], 3)})",
                    flush=True,
                )
        if args.part in ("jobs", "both"):
            n = args.trials or 24
            tune_args = [str(CONFIG), "--param", PARAM, "--trials", str(n), "--pruner", "none"]
            tune_args += ["--set", f"train.epochs={args.epochs}"]
            extra = no_fsync_env(Path(tmp) / "site") if args.no_fsync else {}
            run_jobs(tune_args, Path(tmp) / "warm", 1, True, extra)  # the kernels' cache exists
            walls: dict[str, list[float]] = {m: [] for m in MODES}
            for r in range(args.repeats):
                order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    jobs, one = MODES[mode]
                    t = run_jobs(tune_args, Path(tmp) / f"{mode}-{r}", jobs, one, extra)
                    walls[mode].append(t)
                    print(
                        f"  repeat {r + 1}/{args.repeats}  {mode:<11} {t:7.2f} s wall"
                        f"  (load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
            med = {m: median(v) for m, v in walls.items()}
            fsync = ", os.fsync skipped" if args.no_fsync else ""
            print(f"jobs: {n} trials, {args.epochs} epochs each, cores: {os.cpu_count()}{fsync}")
            for m, v in walls.items():
                print(f"  {m:<12}{med[m]:>8.2f} s median   all: {listed(v)}")
            for m in ("jobs1", "jobs1-1thr"):
                print(f"  speed-up {m} / jobs2: {med[m] / med['jobs2']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
