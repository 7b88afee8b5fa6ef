from pathlib import Path

import numpy as np
import pytest

from dlrun.config.resolve import resolve
from dlrun.data.base import Split
from dlrun.nn.network import EVAL_BATCH, Network
from dlrun.nn.targets import Targets
from dlrun.runs import checkpoint
from dlrun.runs.build import load_data, make_streams
from dlrun.runs.rundir import RunDir
from dlrun.training.evaluation import confusion_matrix, evaluate, evaluate_run
from dlrun.training.train import train
from tests.conftest import REGRESSION, small_config
from tests.naive_recurrent import rnn_forward

HAVE_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir()


def test_confusion_matrix_counts():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


def test_eval_reports_the_confusion_matrix(runs_dir):
    result = train(small_config(), runs_dir=runs_dir)
    m = evaluate_run(result.run_dir, "test", "last")
    cm = m["confusion"]
    assert cm.sum() == m["n"] == 40
    assert np.trace(cm) / cm.sum() == pytest.approx(m["accuracy"])
    assert (result.run_dir / "plots" / "confusion.png").is_file()


@pytest.mark.skipif(
    not HAVE_FASHION, reason="needs Debian's dataset-fashion-mnist (CI installs it)"
)
def test_cnn_run_pictures(runs_dir):
    cfg = {
        "data": {"name": "fashion_mnist", "n_train": 600, "download": False},
        "model": {
            "type": "sequential",
            "init": "he_normal",
            "layers": [
                {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"},
                {"type": "relu"},
                {"type": "maxpool2d", "size": 2},
                {"type": "flatten"},
                {"type": "dense", "units": 10},
                {"type": "softmax"},
            ],
        },
        "optimizer": {"name": "adam", "lr": 0.003},
        "train": {"epochs": 1, "batch_size": 64, "augment": {"rotation": 10, "translate": 0.1}},
    }
    result = train(cfg, runs_dir=runs_dir)
    plots = result.run_dir / "plots"
    assert (plots / "filters.png").is_file() and (plots / "feature_maps.png").is_file()
    assert (plots / "augmentation.png").is_file()
    m = evaluate_run(result.run_dir, "test", "best")
    assert m["n"] == 10000 and m["confusion"].shape == (10, 10)
    assert m["class_names"][0] == "T-shirt/top"
    assert (plots / "misclassified.png").is_file()
    assert m["accuracy"] > 0.4  # far above chance (0.1) after 600 images


# --------------------------------------------------------------------------- evaluate()
# Plain NumPy references over a whole split, computed in float64 from the network's weights:
# evaluate() works in batches of EVAL_BATCH rows, and its mean must not depend on them.
ROWS = 3 * EVAL_BATCH + 8  # a last, partial batch of 8 rows


def _mlp_net(rng):
    """small_config's 2-8-2 tanh network in float64, with weights large enough that the
    loss differs a lot from row to row."""
    net = Network.from_config(resolve(small_config()))
    net.build((2,), rng, np.float64)
    net.params[:] = rng.normal(0.0, 1.5, net.params.size)
    return net


def _mlp_logits(params, x):
    """Logits of small_config's network: dense(8, tanh) -> dense(2), in float64."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    h = np.tanh(x.astype(np.float64) @ p["dense_0.W"] + p["dense_0.b"])
    return h @ p["dense_1.W"] + p["dense_1.b"]


def _cross_entropy(z, labels):
    """Mean of -ln softmax(z)[label] over every row, and the share of argmax == label."""
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(z)), labels].mean(), float(np.mean(z.argmax(axis=1) == labels))


@pytest.mark.parametrize("batch_size", [EVAL_BATCH, 7, ROWS])
def test_evaluate_is_the_mean_over_the_whole_split_whatever_the_batches(batch_size):
    rng = np.random.default_rng(0)
    net = _mlp_net(rng)
    split = Split(rng.normal(size=(ROWS, 2)), rng.integers(0, 2, ROWS))
    loss, accuracy = _cross_entropy(_mlp_logits(net.state_dict(), split.x), split.y)
    # the last partial batch alone has another mean: a wrong weighting would show
    tail, _ = _cross_entropy(_mlp_logits(net.state_dict(), split.x[-8:]), split.y[-8:])
    assert abs(tail - loss) > 0.05
    m = evaluate(net, split, Targets(net, "classification"), batch_size)
    assert m["loss"] == pytest.approx(loss, rel=1e-12)
    assert m["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert 0.2 < accuracy < 0.8  # not a degenerate network that gets all or nothing right


def test_evaluate_of_sequence_outputs_is_the_mean_over_samples_and_time_steps():
    """Many-to-many: rnn (return_sequences) -> dense(1) at every step, quadratic cost.
    The loss is 1/2 (t - o)^2 averaged over all N x T rows, not over the N samples."""
    steps, units = 7, 5
    model = {
        "type": "sequential",
        "layers": [
            {"type": "rnn", "units": units, "return_sequences": True},
            {"type": "dense", "units": 1},
        ],
    }
    cfg = resolve(small_config(**{**REGRESSION, "model": model}))
    rng = np.random.default_rng(1)
    net = Network.from_config(cfg)
    net.build((steps, 1), rng, np.float64)
    net.params[:] = rng.normal(0.0, 0.8, net.params.size)
    split = Split(rng.normal(size=(ROWS, steps, 1)), rng.normal(size=(ROWS, steps, 1)))
    p = net.state_dict()
    states = rnn_forward(split.x, p["rnn_0.U"], p["rnn_0.W"], p["rnn_0.b"], np.zeros(units))
    o = states @ p["dense_1.W"] + p["dense_1.b"]
    assert o.shape == split.y.shape
    loss = 0.5 * np.sum((split.y - o) ** 2) / (ROWS * steps)
    m = evaluate(net, split, Targets(net, "regression"))
    assert set(m) == {"loss"}
    assert m["loss"] == pytest.approx(loss, rel=1e-12)


# --------------------------------------------------------------------------- evaluate_run
# A run whose validation and test splits differ in size (20 and 60 of 200 samples), and
# whose best checkpoint (lowest val_loss) is not its last one.
SIZES = {"n": 200, "val": 20, "test": 60}


def split_sizes_run(runs_dir):
    cfg = small_config(
        data={"name": "moons", "n": 200, "noise": 0.1, "val_fraction": 0.1, "test_fraction": 0.3},
        optimizer={"name": "gd", "lr": 3.0},
        train={"epochs": 12, "batch_size": 8},
    )
    result = train(cfg, runs_dir=runs_dir)
    assert result.summary["best_epoch"] < result.summary["epochs"]  # best != last
    return result


def reference_metrics(run_dir, split, which):
    """n, loss and accuracy of checkpoint ``which`` on ``split``, by NumPy: the run's data
    rebuilt from its config and seed, the checkpoint's weights read from the file."""
    cfg = resolve(RunDir(run_dir).config())
    data = getattr(load_data(cfg, make_streams(cfg["seed"])["data"]), split)
    params = checkpoint.load_params(run_dir / "checkpoints" / f"{which}.npz")
    loss, accuracy = _cross_entropy(_mlp_logits(params, data.x), data.y)
    return {"n": len(data), "loss": loss, "accuracy": accuracy}


@pytest.fixture(scope="module")
def sized_run(tmp_path_factory):
    return split_sizes_run(tmp_path_factory.mktemp("runs")).run_dir


def test_reference_checkpoints_and_splits_differ(sized_run):
    """The checks below can tell the splits and the checkpoints apart."""
    ref = {
        (s, w): reference_metrics(sized_run, s, w)
        for s in ("val", "test")
        for w in ("best", "last")
    }
    assert ref["val", "best"]["n"] == ref["val", "last"]["n"] == SIZES["val"]
    assert ref["test", "best"]["n"] == ref["test", "last"]["n"] == SIZES["test"]
    losses = [r["loss"] for r in ref.values()]
    assert min(abs(a - b) for i, a in enumerate(losses) for b in losses[i + 1 :]) > 1e-3
    # the best checkpoint is the one with the lowest validation loss
    assert ref["val", "best"]["loss"] < ref["val", "last"]["loss"]


@pytest.mark.parametrize("which", ["best", "last"])
@pytest.mark.parametrize("split", ["val", "test", "train"])
def test_evaluate_run_uses_the_split_and_checkpoint_asked_for(sized_run, split, which):
    m = evaluate_run(sized_run, split, which, plots=False)
    ref = reference_metrics(sized_run, split, which)
    assert m["n"] == ref["n"]
    assert m["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert m["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-9)
    assert m["confusion"].sum() == ref["n"]
