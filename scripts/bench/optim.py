"""One optimizer step over a flat float32 parameter vector, and the floor under it.

    python scripts/bench.py optim                    # 1,000,000 parameters, nine optimizers
    python scripts/bench.py optim --size 100000 --repeats 21 --only adam,gd

For each optimizer (default settings): the dlrun kernel, the same update written with
vectorised NumPy (whole-array operations, temporaries allowed), and ``torch.optim``
with matching hyper-parameters when torch imports, with 2 threads and with 1 (on a busy
2-core machine torch's OpenMP threads can wait on each other, so the 1-thread column
is the fairer comparison with dlrun's serial kernels). They alternate, each repeat
timing a few steps; the table shows medians per step and the ratios measured in the
same run.

Every update is one pass over memory: it reads the parameters, the gradient and its
state arrays and writes the parameters and the state back. The ``pass ms`` column
times exactly that traffic with no arithmetic (a kernel adding the gradient into the
parameters and each state array), in the same rounds: no update can be faster on this
machine, so ``pass/torchN`` is the lowest ratio any implementation could reach.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from .common import alternate, make_parser, median, per_call

ORDER = ["gd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam"]


def numpy_step(name: str, opt) -> Callable[[np.ndarray, np.ndarray, float, int], None]:
    """The update of ``opt`` in vectorised NumPy (its state arrays are reused)."""
    c, s, f = opt.config, opt.state, opt.scalar
    product = [1.0]  # Nadam's running product of momentum factors

    def step(p, g, lr, t):
        if name == "gd":
            p -= f(lr) * g
        elif name in ("momentum", "nesterov"):
            v = s["velocity"]
            v *= f(c.alpha)
            v -= f(lr) * g
            p += f(c.alpha) * v - f(lr) * g if name == "nesterov" else v
        elif name in ("adagrad", "rmsprop"):
            r = s["sum_sq"] if name == "adagrad" else s["sq_avg"]
            if name == "rmsprop":
                r *= f(c.beta)
                r += f(1 - c.beta) * g * g
            else:
                r += g * g
            p -= f(lr) * g / (np.sqrt(r) + f(c.eps))
        elif name == "adadelta":
            r, sd, rho, eps = s["sq_grad"], s["sq_delta"], f(c.rho), f(c.eps)
            r *= rho
            r += (1 - rho) * g * g
            d = np.sqrt(sd + eps) / np.sqrt(r + eps) * g
            sd *= rho
            sd += (1 - rho) * d * d
            p -= f(lr) * d
        else:  # adam, adamax, nadam
            m = s["m"]
            m *= f(c.beta1)
            m += f(1 - c.beta1) * g
            if name == "adamax":
                u = s["u"]
                np.maximum(f(c.beta2) * u, np.abs(g), out=u)
                p -= f(lr / (1 - c.beta1**t)) * m / (u + f(c.eps))
                return
            v = s["v"]
            v *= f(c.beta2)
            v += f(1 - c.beta2) * g * g
            denom = np.sqrt(v * f(1 / (1 - c.beta2**t))) + f(c.eps)
            if name == "adam":
                p -= f(lr / (1 - c.beta1**t)) * m / denom
                return
            mu_t, mu_n = opt.mu(t), opt.mu(t + 1)
            prod = product[0] = product[0] * mu_t
            p -= (
                f(lr * (1 - mu_t) / (1 - prod)) * g + f(lr * mu_n / (1 - prod * mu_n)) * m
            ) / denom

    return step


@njit(cache=True, nogil=True)
def pass_0(p, g):
    """The memory traffic of an update without state (gd): p += g."""
    for i in range(p.shape[0]):
        p[i] += g[i]


@njit(cache=True, nogil=True)
def pass_1(p, g, s1):
    """... with one state array (momentum's velocity): s1 += g, p += g."""
    for i in range(p.shape[0]):
        gi = g[i]
        s1[i] += gi
        p[i] += gi


@njit(cache=True, nogil=True)
def pass_2(p, g, s1, s2):
    """... with two (Adam's m and v): s1 += g, s2 += g, p += g."""
    for i in range(p.shape[0]):
        gi = g[i]
        s1[i] += gi
        s2[i] += gi
        p[i] += gi


def torch_optimizer(name: str, c, param):
    """``torch.optim`` with the hyper-parameters of dlrun's config ``c``."""
    import torch

    o, betas = torch.optim, (getattr(c, "beta1", 0.9), getattr(c, "beta2", 0.999))
    make = {
        "gd": lambda: o.SGD([param], lr=c.lr),
        "momentum": lambda: o.SGD([param], lr=c.lr, momentum=c.alpha),
        "nesterov": lambda: o.SGD([param], lr=c.lr, momentum=c.alpha, nesterov=True),
        "adagrad": lambda: o.Adagrad([param], lr=c.lr, eps=c.eps),
        "adadelta": lambda: o.Adadelta([param], lr=c.lr, rho=c.rho, eps=c.eps),
        "rmsprop": lambda: o.RMSprop([param], lr=c.lr, alpha=c.beta, eps=c.eps),
        "adam": lambda: o.Adam([param], lr=c.lr, betas=betas, eps=c.eps),
        "adamax": lambda: o.Adamax([param], lr=c.lr, betas=betas, eps=c.eps),
        "nadam": lambda: o.NAdam(
            [param], lr=c.lr, betas=betas, eps=c.eps, momentum_decay=c.momentum_decay
        ),
    }
    return make[name]()


def bench_one(name: str, size: int, repeats: int, steps: int, threads: list[int]) -> dict:
    """Median seconds per step of each implementation."""
    from dlrun.optim.optimizers import optimizers

    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(size).astype(np.float32)
    g = (0.01 * rng.standard_normal(size)).astype(np.float32)
    cls = optimizers.get(name)
    config = cls.Config()
    ours, ref = cls(config, size, np.float32), cls(config, size, np.float32)
    p_ours, p_ref = p0.copy(), p0.copy()
    ref_step, t = numpy_step(name, ref), [0]

    def numpy_once() -> None:
        t[0] += 1
        ref_step(p_ref, g, config.lr, t[0])

    zeros = [np.zeros(size, np.float32) for _ in range(len(ours.state) + 2)]  # p, g, state
    memory_pass = (pass_0, pass_1, pass_2)[len(ours.state)]
    impls: dict[str, tuple[int | None, Callable[[], None]]] = {
        "dlrun": (None, lambda: ours.step(p_ours, g, config.lr)),
        "numpy": (None, numpy_once),
        "pass": (None, lambda: memory_pass(*zeros)),  # adding zeros: the arrays stay as they are
    }
    for n in threads:
        import torch

        p_t = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        p_t.grad = torch.from_numpy(g.copy())
        impls[f"torch{n}"] = (n, torch_optimizer(name, config, p_t).step)

    def timed(key: str) -> float:
        n, step = impls[key]
        if n is not None:
            import torch

            torch.set_num_threads(n)
        step()  # warm-up: JIT compile, first touch of the state, thread pool
        return per_call(step, steps)

    times = alternate({key: lambda k=key: timed(k) for key in impls}, repeats)
    return {k: median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("optim", __doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="number of parameters")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per implementation")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--only", default="", help="comma-separated optimizer names")
    parser.add_argument(
        "--torch-threads", default="2,1", help="torch thread counts, comma-separated ('' skips)"
    )
    args = parser.parse_args(argv)
    threads = [int(n) for n in args.torch_threads.split(",") if n]
    if threads:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch does not import: timing dlrun and NumPy only")
            threads = []
    print(
        f"one step over {args.size:,} float32 parameters; median of {args.repeats} repeats "
        f"x {args.steps} steps; torch threads: {threads or 'none'}"
    )
    head = f"{'optimizer':<10} {'dlrun ms':>9} {'numpy ms':>9} {'dl/np':>6} {'pass ms':>8}"
    for n in threads:
        head += f" {f'torch{n} ms':>10} {f'dl/torch{n}':>10} {f'pass/torch{n}':>12}"
    print(head)
    for name in [n for n in args.only.split(",") if n] or ORDER:
        t = bench_one(name, args.size, args.repeats, args.steps, threads)
        line = (
            f"{name:<10} {t['dlrun'] * 1e3:9.3f} {t['numpy'] * 1e3:9.3f} "
            f"{t['dlrun'] / t['numpy']:6.2f} {t['pass'] * 1e3:8.3f}"
        )
        for n in threads:
            tt = t[f"torch{n}"]
            line += f" {tt * 1e3:10.3f} {t['dlrun'] / tt:10.2f} {t['pass'] / tt:12.2f}"
        print(line, flush=True)
    return 0
