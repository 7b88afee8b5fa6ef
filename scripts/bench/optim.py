"""Time one optimizer step over a flat float32 parameter vector.

For each optimizer: the dlrun kernel, the same update written with vectorised
NumPy (whole-array operations, temporaries allowed), and ``torch.optim`` with
matching hyper-parameters when torch imports. The three are run in turn
(alternating, so machine noise hits all of them alike), each repeat timing a
few steps; the table shows medians per step and the ratios dlrun / NumPy and
dlrun / torch measured in the same run.

Every update is one pass over memory: it reads the parameters, the gradient
and its state arrays and writes the parameters and the state back. The
``pass ms`` column times exactly that traffic with no arithmetic (a kernel
adding the gradient into the parameters and each state array), measured in
the same rounds: no fused kernel can be faster on this machine, so
``pass/torch2`` is the lowest ratio any implementation could reach.

    python scripts/bench_optim.py                    # 1,000,000 parameters
    python scripts/bench_optim.py --size 100000 --repeats 21 --only adam,gd

torch is timed with 2 threads (``torch.set_num_threads(2)``) and with 1: on a
busy 2-core machine its OpenMP threads can wait on each other, so the
1-thread column is the fairer comparison with dlrun's serial kernels.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from numba import njit

from dlrun.config.registry import optimizers

ORDER = ["gd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam"]


# -- vectorised NumPy versions of the same updates ----------------------------
def numpy_step(name: str, opt) -> Callable[[np.ndarray, np.ndarray, float, int], None]:
    """A NumPy update with the hyper-parameters of ``opt`` (its state is reused)."""
    c, s = opt.config, opt.state
    f = opt.scalar

    if name == "gd":

        def step(p, g, lr, t):
            p -= f(lr) * g

    elif name in ("momentum", "nesterov"):
        a = f(c.alpha)

        def step(p, g, lr, t):
            v = s["velocity"]
            v *= a
            v -= f(lr) * g
            if name == "nesterov":
                p += a * v - f(lr) * g
            else:
                p += v

    elif name == "adagrad":

        def step(p, g, lr, t):
            r = s["sum_sq"]
            r += g * g
            p -= f(lr) * g / (np.sqrt(r) + f(c.eps))

    elif name == "adadelta":
        rho, eps = f(c.rho), f(c.eps)

        def step(p, g, lr, t):
            r, sd = s["sq_grad"], s["sq_delta"]
            r *= rho
            r += (1 - rho) * g * g
            d = np.sqrt(sd + eps) / np.sqrt(r + eps) * g
            sd *= rho
            sd += (1 - rho) * d * d
            p -= f(lr) * d

    elif name == "rmsprop":
        beta, eps = f(c.beta), f(c.eps)

        def step(p, g, lr, t):
            r = s["sq_avg"]
            r *= beta
            r += (1 - beta) * g * g
            p -= f(lr) * g / (np.sqrt(r) + eps)

    elif name in ("adam", "adamax", "nadam"):
        b1, b2, eps = f(c.beta1), f(c.beta2), f(c.eps)
        product = [1.0]

        def step(p, g, lr, t):
            m = s["m"]
            m *= b1
            m += (1 - b1) * g
            if name == "adamax":
                u = s["u"]
                np.maximum(b2 * u, np.abs(g), out=u)
                p -= f(lr / (1 - c.beta1**t)) * m / (u + eps)
                return
            v = s["v"]
            v *= b2
            v += (1 - b2) * g * g
            denom = np.sqrt(v * f(1 / (1 - c.beta2**t))) + eps
            if name == "adam":
                p -= f(lr / (1 - c.beta1**t)) * m / denom
            else:
                mu_t, mu_n = opt.mu(t), opt.mu(t + 1)
                prod = product[0] = product[0] * mu_t
                coef_g = f(lr * (1 - mu_t) / (1 - prod))
                coef_m = f(lr * mu_n / (1 - prod * mu_n))
                p -= (coef_g * g + coef_m * m) / denom

    else:  # pragma: no cover
        raise ValueError(name)
    return step


# -- the memory traffic of an update, without its arithmetic ---------------------
@njit(cache=True, nogil=True)
def one_pass_2(p, g, s1, s2):
    """p += g, s1 += g, s2 += g: reads p, g, s1, s2 and writes p, s1, s2, the arrays an
    update with two state arrays (Adam's m and v) reads and writes."""
    for i in range(p.shape[0]):
        gi = g[i]
        s1[i] += gi
        s2[i] += gi
        p[i] += gi


@njit(cache=True, nogil=True)
def one_pass_1(p, g, s1):
    """The same with one state array (momentum's velocity)."""
    for i in range(p.shape[0]):
        gi = g[i]
        s1[i] += gi
        p[i] += gi


@njit(cache=True, nogil=True)
def one_pass_0(p, g):
    """The same with no state (plain gradient descent)."""
    for i in range(p.shape[0]):
        p[i] += g[i]


def memory_pass(p: np.ndarray, g: np.ndarray, states: list[np.ndarray]) -> Callable[[], None]:
    """One pass over the arrays of an update (parameters, gradient, state), in one loop."""
    if len(states) == 0:
        return lambda: one_pass_0(p, g)
    if len(states) == 1:
        return lambda: one_pass_1(p, g, states[0])
    if len(states) == 2:
        return lambda: one_pass_2(p, g, states[0], states[1])
    raise ValueError(f"{len(states)} state arrays")


# -- torch.optim with the same hyper-parameters ---------------------------------
def torch_optimizer(name: str, config, param):
    import torch

    o = torch.optim
    lr = config.lr
    if name == "gd":
        return o.SGD([param], lr=lr)
    if name == "momentum":
        return o.SGD([param], lr=lr, momentum=config.alpha)
    if name == "nesterov":
        return o.SGD([param], lr=lr, momentum=config.alpha, nesterov=True)
    if name == "adagrad":
        return o.Adagrad([param], lr=lr, eps=config.eps)
    if name == "adadelta":
        return o.Adadelta([param], lr=lr, rho=config.rho, eps=config.eps)
    if name == "rmsprop":
        return o.RMSprop([param], lr=lr, alpha=config.beta, eps=config.eps)
    if name == "adam":
        return o.Adam([param], lr=lr, betas=(config.beta1, config.beta2), eps=config.eps)
    if name == "adamax":
        return o.Adamax([param], lr=lr, betas=(config.beta1, config.beta2), eps=config.eps)
    if name == "nadam":
        return o.NAdam(
            [param],
            lr=lr,
            betas=(config.beta1, config.beta2),
            eps=config.eps,
            momentum_decay=config.momentum_decay,
        )
    raise ValueError(name)


def time_steps(step: Callable[[], None], steps: int) -> float:
    """Seconds per call of ``step``, averaged over ``steps`` calls."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def bench_one(
    name: str, size: int, repeats: int, steps: int, torch_threads: list[int]
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(size).astype(np.float32)
    g = (0.01 * rng.standard_normal(size)).astype(np.float32)
    cls = optimizers.get(name)
    config = cls.Config()
    lr = config.lr

    opt_d = cls(config, size, np.float32)
    p_d = p0.copy()
    opt_n = cls(config, size, np.float32)
    p_n = p0.copy()
    np_step = numpy_step(name, opt_n)
    counter = {"numpy": 0}

    def run_numpy() -> None:
        counter["numpy"] += 1
        np_step(p_n, g, lr, counter["numpy"])

    p_m = np.zeros(size, np.float32)
    g_m = np.zeros(size, np.float32)  # adding zeros: the arrays stay as they are
    states_m = [np.zeros(size, np.float32) for _ in opt_d.state]

    # (threads for torch or None, one step)
    impls: dict[str, tuple[int | None, Callable[[], None]]] = {
        "dlrun": (None, lambda: opt_d.step(p_d, g, lr)),
        "numpy": (None, run_numpy),
        "pass": (None, memory_pass(p_m, g_m, states_m)),
    }
    for threads in torch_threads:
        import torch

        p_t = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        p_t.grad = torch.from_numpy(g.copy())
        impls[f"torch{threads}"] = (threads, torch_optimizer(name, config, p_t).step)

    def timed(key: str) -> float:
        threads, step = impls[key]
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        step()  # warm-up (JIT compile, first touch of the state, thread pool)
        return time_steps(step, steps)

    times: dict[str, list[float]] = {k: [] for k in impls}
    for r in range(repeats):
        keys = list(impls) if r % 2 == 0 else list(reversed(impls))
        for key in keys:
            times[key].append(timed(key))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="number of parameters")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per implementation")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--only", default="", help="comma-separated optimizer names")
    parser.add_argument(
        "--torch-threads",
        default="2,1",
        help="torch thread counts to time, comma-separated ('' skips torch)",
    )
    args = parser.parse_args(argv)

    torch_threads = [int(n) for n in args.torch_threads.split(",") if n]
    if torch_threads:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch does not import: timing dlrun and NumPy only")
            torch_threads = []
    names = [n for n in args.only.split(",") if n] or ORDER

    print(
        f"one step over {args.size:,} float32 parameters; median of {args.repeats} repeats "
        f"x {args.steps} steps; torch threads: {torch_threads or 'none'}"
    )
    head = f"{'optimizer':<10} {'dlrun ms':>9} {'numpy ms':>9} {'dl/np':>6} {'pass ms':>8}"
    for n in torch_threads:
        head += f" {f'torch{n} ms':>10} {f'dl/torch{n}':>10} {f'pass/torch{n}':>12}"
    print(head)
    for name in names:
        t = bench_one(name, args.size, args.repeats, args.steps, torch_threads)
        line = (
            f"{name:<10} {t['dlrun'] * 1e3:9.3f} {t['numpy'] * 1e3:9.3f} "
            f"{t['dlrun'] / t['numpy']:6.2f} {t['pass'] * 1e3:8.3f}"
        )
        for n in torch_threads:
            tt = t[f"torch{n}"]
            line += f" {tt * 1e3:10.3f} {t['dlrun'] / tt:10.2f} {t['pass'] / tt:12.2f}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
