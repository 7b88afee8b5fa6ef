"""How much faster is ``dlrun compare --jobs 2`` than ``--jobs 1``?

    python scripts/bench.py compare                   # 8 cells, 3 repeats
    python scripts/bench.py compare --seeds 3 --epochs 200 --repeats 5

The sweep: ``configs/quickstart.yaml`` (3-class spirals) with gd, momentum, adam and
rmsprop x ``--seeds`` seeds, ``--epochs`` epochs each, given to ``dlrun compare`` as
``--grid``, ``--seeds`` and ``--set``. Every run is a fresh ``dlrun compare`` process
into a fresh runs folder (so its wall time includes start-up, spawning the workers and
loading the cached kernels, as a user sees it). Three modes, alternating so that
machine noise hits all of them alike:

  jobs1       --jobs 1: cells one after another in one process (BLAS and Numba
              threads: all cores, the default)
  jobs1-1thr  --jobs 1 with every thread variable set to 1: the fairest serial
              baseline on a busy machine, where 2 BLAS threads fighting over small
              matrices are slower than 1
  jobs2       --jobs 2: two worker processes, cores // 2 threads each

The table shows the median wall time of each mode and the speed-ups measured in the
same run; for the one-process modes also the CPU seconds (well below the wall time:
other programs held the cores). The workers of ``--jobs 2`` are forked by a fork
server this script cannot account, so no CPU figure there.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT, listed, make_parser, median

CONFIG = "configs/quickstart.yaml"
OPTIMIZERS = ["gd", "momentum", "adam", "rmsprop"]
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MODES = {"jobs1": (1, False), "jobs1-1thr": (1, True), "jobs2": (2, False)}


def run_once(sweep: list[str], runs: Path, jobs: int, one_thread: bool) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys of the command and its workers) of one sweep."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS and k != "DLRUN_THREADS"}
    if one_thread:
        env.update({k: "1" for k in THREAD_VARS})
    cmd = [sys.executable, "-c", "from dlrun.cli import main; main()", "compare", *sweep]
    cmd += ["--runs-dir", str(runs)]
    cmd += ["--jobs", str(jobs), "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    shutil.rmtree(runs)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("compare", __doc__)
    parser.add_argument("--seeds", type=int, default=2, help="per optimizer (cells = 4 x seeds)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--n", type=int, default=1500, help="spirals samples")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    sweep = [CONFIG, "--name", "bench", "--grid", f"optimizer.name={','.join(OPTIMIZERS)}"]
    sweep += ["--seeds", str(args.seeds), "--set", f"train.epochs={args.epochs}"]
    sweep += ["--set", f"data.n={args.n}"]
    runs: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="bench_compare_") as tmp:
        run_once(sweep, Path(tmp) / "warm", 1, False)  # warm-up: the kernels' cache exists
        for r in range(args.repeats):
            for mode, (jobs, one) in MODES.items():
                t, cpu = run_once(sweep, Path(tmp) / f"{mode}-{r}", jobs, one)
                runs[mode].append((t, cpu))
                shown = f"{cpu:7.2f} s cpu" if jobs == 1 else " " * 14
                print(
                    f"repeat {r + 1}/{args.repeats}  {mode:<11} {t:7.2f} s wall  {shown}"
                    f"  (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    wall = {m: [t for t, _ in v] for m, v in runs.items()}
    med = {m: median(v) for m, v in wall.items()}
    print(
        f"\n{len(OPTIMIZERS) * args.seeds} cells, {args.epochs} epochs each, "
        f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'mode':<12}{'median wall s':>14}{'median cpu s':>14}   all runs (wall)")
    for m, v in runs.items():
        cpu = f"{median(c for _, c in v):.2f}" if MODES[m][0] == 1 else "-"
        print(f"{m:<12}{med[m]:>14.2f}{cpu:>14}   {listed(wall[m])}")
    for m in ("jobs1", "jobs1-1thr"):
        print(f"speed-up {m} / jobs2: {med[m] / med['jobs2']:.2f}x")
    paired = [a / b for a, b in zip(wall["jobs1-1thr"], wall["jobs2"])]
    print(f"paired ratios jobs1-1thr / jobs2 per repeat: {listed(paired)}")
    return 0
