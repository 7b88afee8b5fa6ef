import numpy as np
import pytest

from dlrun.config.registry import losses
from dlrun.nn import gradcheck as G
from dlrun.nn.layers.activation import ReLU, Sign
from dlrun.nn.layers.dense import Dense


class BrokenDense(Dense):
    """Dense whose weight gradient is off by 1%: the checker must catch it."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["W"] *= 1.01
        return dx


def test_checker_catches_a_wrong_gradient():
    report = G.check_layer(BrokenDense(Dense.Config(units=3)), (4,))
    rows = {r.what: r for r in report.rows}
    assert not report.passed
    assert not rows["W"].passed and rows["input"].passed and rows["b"].passed


def test_checker_catches_a_wrong_input_gradient():
    class Off(ReLU):
        def backward(self, dy):
            return super().backward(dy) * 0.5

    assert not G.check_layer(Off(), (5,)).passed


def test_relu_and_sign_at_the_kink_are_not_false_failures():
    for layer in (ReLU(), Sign()):
        layer.build((4,), np.random.default_rng(0), np.float64)
        x = np.array([[0.0, 1e-7, -1e-7, 0.5]])
        r = np.ones_like(x)

        def loss(layer=layer, x=x, r=r):
            return float(np.sum(layer.forward(x, True) * r))

        layer.forward(x, True)
        dx = layer.backward(r)
        row = G.compare("input", dx, loss, x, kinks=True)
        assert row.passed and row.skipped >= 2, row


def test_kink_skipping_does_not_hide_real_bugs():
    # a smooth function with a wrong derivative fails even when kinks are allowed
    x = np.array([0.3, -1.2, 2.0])
    row = G.compare("input", 3 * x**2 * 1.05, lambda: float(np.sum(x**3)), x, kinks=True)
    assert row.failed == 3


@pytest.mark.parametrize("name", ["quadratic", "cross_entropy", "binary_cross_entropy"])
def test_losses_pass(name):
    assert G.check_loss(losses.get(name)()).passed


def test_whole_network_end_to_end():
    from dlrun.config.resolve import resolve

    cfg = resolve(
        {
            "data": {"name": "moons"},
            "model": {
                "type": "sequential",
                "layers": [
                    {"type": "dense", "units": 5, "activation": "tanh"},
                    {"type": "dense", "units": 4, "activation": "softplus"},
                    {"type": "dense", "units": 3},
                    {"type": "softmax"},
                ],
            },
        }
    )
    reports = G.check_network(cfg, (2,))
    assert len(reports) == 4  # three layers before the fused softmax, and the end-to-end check
    assert all(r.passed for r in reports), "\n".join(r.text() for r in reports)
    assert reports[-1].rows[0].n == 2 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3


def test_big_tensors_are_checked_at_a_random_sample_of_entries():
    from dlrun.config.resolve import resolve

    cfg = resolve(
        {
            "data": {"name": "blobs", "features": 300},
            "loss": "quadratic",
            "model": {
                "type": "sequential",
                "layers": [
                    {"type": "dense", "units": 40, "activation": "tanh"},
                    {"type": "dense", "units": 3},
                ],
            },
        }
    )
    reports = G.check_network(cfg, (300,), max_entries=50)
    assert all(r.passed for r in reports)
    first = {row.what: row.n for row in reports[0].rows}
    assert first == {"input": 50, "W": 50, "b": 40}
    # a wrong gradient is still found by the sample
    x = np.linspace(-1, 1, 1000)
    assert (
        G.compare("v", 2 * x * 1.1, lambda: float(np.sum(x**2)), x, False, max_entries=20).failed
        == 20
    )
