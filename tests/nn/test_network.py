import numpy as np
import pytest

from dlrun.config.resolve import resolve
from dlrun.errors import BuildError, CheckpointError
from dlrun.nn.network import Network
from tests.conftest import small_config


def build(cfg, shape=(2,), dtype=np.float64):
    net = Network.from_config(resolve(cfg))
    net.build(shape, np.random.default_rng(0), dtype)
    return net


def test_parameters_live_in_one_flat_buffer():
    net = build(small_config())
    assert net.params.size == 2 * 8 + 8 + 8 * 2 + 2
    dense = net.layers[0]
    assert np.shares_memory(dense.params["W"], net.params)
    assert np.shares_memory(dense.grads["W"], net.grads)
    net.params[:] = 0.5  # an optimizer step on the buffer is seen by the layers
    assert (dense.params["W"] == 0.5).all()


def test_perceptron_step_is_rosenblatts_rule():
    """One gd step at batch size 1 gives w <- w + eta (t - o) x, with b as w0 (x0 = 1)."""
    from dlrun.config.registry import optimizers

    net = build({"data": {"name": "xor"}, "model": {"type": "perceptron"}, "loss": "quadratic"})
    w = net.layers[0].params["W"][:, 0].copy()
    w0 = net.layers[0].params["b"][0].copy()
    x = np.array([[0.7, -1.3]])
    o = 1.0 if w0 + x[0] @ w >= 0 else -1.0
    t = -o  # a misclassified sample, so the rule moves the weights
    _, out = net.train_step_grads(x, np.array([[t]]))
    assert out[0, 0] == o
    eta = 0.1
    gd = optimizers.get("gd")
    opt = gd(gd.Config(name="gd", lr=eta), net.params.size, net.params.dtype)
    opt.step(net.params, net.grads, eta)
    np.testing.assert_allclose(net.layers[0].params["W"][:, 0], w + eta * (t - o) * x[0])
    np.testing.assert_allclose(net.layers[0].params["b"][0], w0 + eta * (t - o) * 1.0)


@pytest.mark.parametrize("hidden", [0, 3, 20])
def test_any_depth_builds(hidden):
    layers = [{"type": "dense", "units": 8, "activation": "relu"}] * hidden
    net = build(
        small_config(
            model={
                "type": "sequential",
                "layers": [*layers, {"type": "dense", "units": 2}, {"type": "softmax"}],
            }
        )
    )
    assert len(net.layers) == hidden + 2
    loss, _ = net.train_step_grads(np.ones((4, 2)), np.array([0, 1, 0, 1]))
    assert np.isfinite(loss) and np.isfinite(net.grads).all()


def test_fused_loss_needs_its_final_layer():
    cfg = small_config()
    cfg["model"]["layers"] = cfg["model"]["layers"][:-1]
    with pytest.raises(BuildError, match=r"expects the network to end in a 'softmax' layer.*"):
        build(cfg)


def test_state_dict_round_trip_and_mismatch():
    a, b = build(small_config()), build(small_config(seed=9))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.params, b.params)
    other = build(
        small_config(
            model={
                "type": "sequential",
                "layers": [{"type": "dense", "units": 3}, {"type": "softmax"}],
            }
        )
    )
    with pytest.raises(CheckpointError, match="does not match the network"):
        other.load_state_dict(a.state_dict())


def test_initializers_have_the_documented_scale():
    from dlrun.config.registry import initializers

    rng = np.random.default_rng(0)
    shape, fi, fo = (400, 300), 400, 300
    stds = {
        "glorot_uniform": np.sqrt(2 / (fi + fo)),
        "glorot_normal": np.sqrt(2 / (fi + fo)),
        "he_uniform": np.sqrt(2 / fi),
        "he_normal": np.sqrt(2 / fi),
        "small_uniform": 0.05 / np.sqrt(3),
    }
    for name, std in stds.items():
        w = initializers.get(name)(shape, fi, fo, rng, np.float64)
        assert w.std() == pytest.approx(std, rel=0.03), name
    assert not initializers.get("zeros")((3,), 1, 1, rng, np.float32).any()


def test_per_layer_initializer_overrides_the_global_one():
    cfg = small_config()
    cfg["model"]["init"] = "zeros"
    cfg["model"]["layers"][0]["init"] = "he_normal"
    net = build(cfg)
    assert net.layers[0].params["W"].any() and not net.layers[1].params["W"].any()


def test_no_input_gradient_before_the_first_trained_layer():
    """flatten -> dense: dC/dx of the first dense layer (a product as dC/dW) and
    the flatten backward are never computed; the weight gradients are unchanged."""
    cfg = small_config(
        model={
            "type": "sequential",
            "layers": [
                {"type": "flatten"},
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 2},
                {"type": "softmax"},
            ],
        }
    )
    net = build(cfg, shape=(2, 3))
    flatten, first, second = net.layers[:3]
    assert (flatten.input_grad, first.input_grad, second.input_grad) == (False, False, True)
    calls = []
    flatten.backward = lambda dy: calls.append(dy)
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    t = np.array([0, 1, 0, 1])
    net.train_step_grads(x, t)
    assert calls == []
    fast = net.grads.copy()
    for layer in net.layers:  # what gradcheck does: every layer computes dC/dx
        layer.input_grad = True
    net.train_step_grads(x, t)
    assert len(calls) == 1
    np.testing.assert_array_equal(net.grads, fast)


def test_evaluation_passes_are_at_most_eval_batch_inputs():
    """predict (and evaluate, which uses the same default) bounds the activations it holds:
    the first step (a layer, or a run of dense layers) never sees more than EVAL_BATCH
    inputs at once, and the outputs equal one pass over everything."""
    from dlrun.nn.network import EVAL_BATCH

    net = build(small_config())
    first = net.steps[0]
    seen, forward = [], first.forward
    first.forward = lambda x, training: (seen.append(len(x)), forward(x, training))[1]
    x = np.random.default_rng(2).standard_normal((3 * EVAL_BATCH + 5, 2))
    out = net.predict(x)
    assert max(seen) == EVAL_BATCH and sum(seen) == len(x)
    np.testing.assert_allclose(out, net.forward(x, False), rtol=1e-12)


def test_state_dict_copies_unless_asked_for_views():
    net = Network.from_config(resolve(small_config()))
    net.build((4,), np.random.default_rng(0))
    copies, views = net.state_dict(), net.state_dict(copy=False)
    assert copies.keys() == views.keys()
    for key in copies:
        assert not np.shares_memory(copies[key], net.params)
        assert np.shares_memory(views[key], net.params)
        np.testing.assert_array_equal(copies[key], views[key])
