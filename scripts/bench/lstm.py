"""The LSTM benchmarks, on the network of ``configs/lstm_fashion_rows.yaml`` (28 steps of
28 pixels -> LSTM(128), last state -> dense 10 -> softmax cross-entropy).

    python scripts/bench.py lstm [--rounds 5] [--batches 20] [--threads 1 2]
    python scripts/bench.py lstm --gates [--rounds 9]

Without ``--gates``: forward + backward of one batch, dlrun against PyTorch's
``nn.LSTM``, as ``bench.py batch configs/lstm_fashion_rows.yaml`` (see ``batch.py``).
With ``--gates``: microseconds per call of one forward step's gate kernel (batch x 4H
gates, batch x H cell, float32) three ways: Numba with libm's exp and tanh (dlrun's
float64 path), NumPy ufuncs, and Numba with the rational tanh and sigmoid (dlrun's
float32 path), alternating round by round. A real epoch of the config against
PyTorch is ``bench.py epoch lstm``.
"""

from __future__ import annotations

import numpy as np

from . import batch
from .common import alternate, config, make_parser, median, network, per_call

CONFIG = "configs/lstm_fashion_rows.yaml"
ROWS = (28, 28)  # Fashion-MNIST images as rows, the config's data


def numpy_gates_step(gates, b, c_prev, c_out, tc_out, h_out) -> None:
    """The forward step kernel written with NumPy ufuncs."""
    h = c_prev.shape[1]
    gates += b
    sig = gates[:, : 3 * h]
    np.negative(sig, out=sig)
    np.exp(sig, out=sig)
    sig += 1.0
    np.reciprocal(sig, out=sig)
    np.tanh(gates[:, 3 * h :], out=gates[:, 3 * h :])
    np.multiply(gates[:, :h], c_prev, out=c_out)
    c_out += gates[:, h : 2 * h] * gates[:, 3 * h :]
    np.tanh(c_out, out=tc_out)
    np.multiply(gates[:, 2 * h : 3 * h], tc_out, out=h_out)


def bench_gates(rounds: int, calls: int = 200) -> None:
    from dlrun.kernels import recurrent as K
    from dlrun.runs.threads import set_threads

    set_threads(1)
    cfg = config(CONFIG)
    n = cfg["train"]["batch_size"]
    lstm = next(layer for layer in network(cfg, ROWS, 10).layers if layer.registered_name == "lstm")
    h = lstm.config.units
    rng = np.random.default_rng(0)
    gx = rng.standard_normal((n, 4 * h)).astype(np.float32)  # [h_{t-1}, x_t] W
    b = rng.standard_normal(4 * h).astype(np.float32)
    c_prev = rng.standard_normal((n, h)).astype(np.float32)
    outs = [np.empty((n, h), np.float32) for _ in range(3)]
    gates = gx.copy()
    k, tanh = K.constants(np.float32), K.ACTIVATION_CODES["tanh"]
    ways = {
        "numba libm (exact)": lambda: K.lstm_step_forward(gates, b, c_prev, *outs, tanh, False, k),
        "numpy ufuncs": lambda: numpy_gates_step(gates, b, c_prev, *outs),
        "numba rational": lambda: K.lstm_step_forward(gates, b, c_prev, *outs, tanh, True, k),
    }

    def timed(way):
        gates[...] = gx  # the same inputs every call
        return 1e6 * per_call(way, calls)

    for way in ways.values():  # compile or load the cached kernels
        way()
    t = alternate({name: lambda w=way: timed(w) for name, way in ways.items()}, rounds)
    print(f"LSTM step kernel, {n} x {4 * h} gates, float32, median of {rounds} rounds:")
    for name, us in t.items():
        print(f"  {name:20s} {median(us):8.1f} us/step")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("lstm", __doc__)
    parser.add_argument("--gates", action="store_true", help="time the gate kernels alone")
    batch.add_options(parser)
    args = parser.parse_args(argv)
    if args.gates:
        bench_gates(args.rounds)
    else:
        batch.run(CONFIG, args)
    return 0
