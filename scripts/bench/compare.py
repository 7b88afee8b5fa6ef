"""How much faster is ``dlrun compare --jobs 2`` than ``--jobs 1``?

A sweep of short cells (the quickstart's spirals, four optimizers x N seeds,
a few epochs each) runs with ``--jobs 1`` and ``--jobs 2`` in turn, each time
as a fresh ``dlrun compare`` process into a fresh runs folder (so the wall
time includes start-up, spawning the workers and loading the cached
kernels, as a user sees it). The modes alternate, so machine noise hits all
of them alike; the table shows the median wall time of each and the ratios
measured in the same run. For the one-process modes it also shows the CPU
seconds used: CPU well below wall time means other programs held the cores
(the workers of ``--jobs 2`` are forked by a fork server this script cannot
account, so no CPU figure there).

Three modes:
  jobs1       --jobs 1: cells one after another in one process (BLAS and Numba
              threads: all cores, the default)
  jobs1-1thr  --jobs 1 with every thread variable set to 1: the fairest serial
              baseline on a busy machine, where 2 BLAS threads fighting over
              small matrices are slower than 1
  jobs2       --jobs 2: two worker processes, cores // 2 threads each

    python scripts/bench_compare.py                   # 8 cells, 3 repeats
    python scripts/bench_compare.py --seeds 3 --epochs 12 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
OPTIMIZERS = ["gd", "momentum", "adam", "rmsprop"]


def write_sweep(folder: Path, seeds: int, epochs: int, n: int) -> Path:
    path = folder / "bench_sweep.yaml"
    path.write_text(
        f"name: bench\n"
        f"base: {ROOT / 'configs' / 'quickstart.yaml'}\n"
        f"set: {{train.epochs: {epochs}, data.n: {n}}}\n"
        f"grid: {{optimizer.name: [{', '.join(OPTIMIZERS)}]}}\n"
        f"seeds: {seeds}\n",
        encoding="utf-8",
    )
    return path


def run_once(sweep: Path, runs: Path, jobs: int, one_thread: bool) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys of the command and its workers) of one sweep."""
    env = dict(os.environ)
    for k in THREAD_VARS:
        env.pop(k, None)
    if one_thread:
        env.update({k: "1" for k in THREAD_VARS})
    cmd = [
        sys.executable,
        "-c",
        "from dlrun.cli import main; main()",
        "compare",
        str(sweep),
        "--runs-dir",
        str(runs),
        "--jobs",
        str(jobs),
        "--quiet",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    shutil.rmtree(runs)
    return seconds, cpu


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, default=2, help="seeds per optimizer (cells = 4 x seeds)"
    )
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--n", type=int, default=1500, help="spirals samples")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    modes = {"jobs1": (1, False), "jobs1-1thr": (1, True), "jobs2": (2, False)}
    times: dict[str, list[float]] = {m: [] for m in modes}
    cpus: dict[str, list[float]] = {m: [] for m in modes}
    cells = len(OPTIMIZERS) * args.seeds
    with tempfile.TemporaryDirectory(prefix="bench_compare_") as tmp:
        folder = Path(tmp)
        sweep = write_sweep(folder, args.seeds, args.epochs, args.n)
        # warm-up: the kernels' cache exists before anything is timed
        run_once(sweep, folder / "warm", 1, False)
        for r in range(args.repeats):
            for mode, (jobs, one) in modes.items():
                t, cpu = run_once(sweep, folder / f"{mode}-{r}", jobs, one)
                times[mode].append(t)
                cpus[mode].append(cpu)
                load = os.getloadavg()[0]
                shown = f"{cpu:7.2f} s cpu" if jobs == 1 else "      -       "
                print(
                    f"repeat {r + 1}/{args.repeats}  {mode:<11} {t:7.2f} s wall  {shown}"
                    f"  (load {load:.1f})",
                    flush=True,
                )
    med = {m: statistics.median(v) for m, v in times.items()}
    print(
        f"\n{cells} cells, {args.epochs} epochs each, cores: {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'mode':<12}{'median wall s':>14}{'median cpu s':>14}   all runs (wall)")
    for m, v in times.items():
        cpu_med = f"{statistics.median(cpus[m]):.2f}" if modes[m][0] == 1 else "-"
        print(f"{m:<12}{med[m]:>14.2f}{cpu_med:>14}   " + " ".join(f"{x:.2f}" for x in v))
    ratios = {
        "jobs1 / jobs2": med["jobs1"] / med["jobs2"],
        "jobs1-1thr / jobs2": med["jobs1-1thr"] / med["jobs2"],
    }
    paired = [a / b for a, b in zip(times["jobs1-1thr"], times["jobs2"])]
    for k, v in ratios.items():
        print(f"speed-up {k}: {v:.2f}x")
    print(f"paired ratios jobs1-1thr / jobs2 per repeat: {' '.join(f'{x:.2f}' for x in paired)}")
    return {**{f"median_{m}": v for m, v in med.items()}, **ratios}


if __name__ == "__main__":
    main()
