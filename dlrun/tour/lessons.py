"""The lessons of the tour, in the order of the course: each one runs its experiments,
keeps its pictures and states the numbers docs/course.md promises.

Every number goes through :meth:`Tour.expect` with the range it must fall in; the
ranges hold over seeds 0, 1 and 2 wherever a lesson runs several seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlrun.runs.rundir import RunDir
from dlrun.tour.tour import Tour, sweep_values

#: The seeds of a lesson that states a range over seeds.
SEEDS = (0, 1, 2)


# ----------------------------------------------------------------------------- 1
def perceptron(t: Tour) -> None:
    """The perceptron and its learning rule: AND is learned, XOR never is."""
    from dlrun.tour.figures import LineHistory, perceptron_rule

    histories = {}
    for problem in ("and", "xor"):
        history = LineHistory()
        run = t.train(f"{problem}_perceptron", callbacks=[history])
        histories[problem.upper()] = history
        final = run.read_json("summary.json")["final"]
        best = max(row["accuracy"] for row in run.metrics())
        if problem == "and":
            t.expect(
                "and_perceptron.test_accuracy",
                final["test_accuracy"],
                1.0,
                1.0,
                "the perceptron classifies all four AND points",
            )
        else:
            t.expect(
                "xor_perceptron.best_accuracy",
                best,
                0.0,
                0.75,
                "no epoch classifies more than three of the four XOR points",
            )
    t.draw(
        "01-perceptron-rule.png",
        perceptron_rule,
        histories,
        "the perceptron learning rule w += eta (t - o) x, one training point per update",
    )


# ----------------------------------------------------------------------------- 2
def depth(t: Tour) -> None:
    """Feed-forward networks: a hidden layer learns XOR; depth bends the boundary, but only
    with a nonlinear activation."""
    xor = t.train("xor_mlp").read_json("summary.json")["final"]
    t.expect("xor_mlp.test_accuracy", xor["test_accuracy"], 1.0, 1.0, "one hidden layer learns XOR")
    shallow = t.train("depth_0")
    deep = t.train("depth_3")
    linear = t.train(
        "depth_3",
        *(f"model.layers[{i}].activation=identity" for i in range(3)),
        run_name="depth_3_identity",
    )
    acc = {
        name: run.read_json("summary.json")["final"]["test_accuracy"]
        for name, run in (("depth_0", shallow), ("depth_3", deep), ("identity", linear))
    }
    t.expect(
        "depth_0.test_accuracy",
        acc["depth_0"],
        0.82,
        0.9,
        "no hidden layer: a straight line through the moons",
    )
    t.expect("depth_3.test_accuracy", acc["depth_3"], 0.95, 1.0, "three ReLU hidden layers")
    t.expect(
        "depth_3_identity.gap_to_depth_0",
        acc["identity"] - acc["depth_0"],
        -0.03,
        0.03,
        "three identity hidden layers are one linear map: no better than no hidden layer",
    )
    t.keep(shallow.plots / "decision_boundary.png", "02-depth-0-boundary.png")
    t.keep(deep.plots / "decision_boundary.png", "02-depth-3-boundary.png")


# ----------------------------------------------------------------------------- 3
def activations(t: Tour) -> None:
    """Activation functions and their derivatives; sigma'(0) = 1/4."""
    from dlrun.nn.activations import SPECS
    from dlrun.runs import pictures

    t.draw("03-activations.png", pictures.activations)
    slope = float(SPECS["sigmoid"].derivative_at(np.zeros(1), 0.0)[0])
    t.expect("sigmoid.derivative_at_0", slope, 0.25, 0.25, "sigma'(0) = sigma(0)(1 - sigma(0))")


# ----------------------------------------------------------------------------- 4
def losses(t: Tour) -> None:
    """The quadratic cost against cross-entropy on a sigmoid output unit."""
    result = t.compare("sweeps/losses")
    acc = sweep_values(result, "test_accuracy")
    diff = np.array(acc["cross_entropy"]) - np.array(acc["quadratic"])
    t.expect(
        "losses.cross_entropy_minus_quadratic.min",
        diff.min(),
        0.02,
        0.2,
        "cross-entropy's test accuracy above the quadratic cost's, on every seed",
    )
    t.keep(result.sweep_dir / "plots" / "curves.png", "04-losses-curves.png")
    sine = t.train("sine_regression").read_json("summary.json")["final"]
    t.expect(
        "sine_regression.test_loss",
        sine["test_loss"],
        0.0,
        0.003,
        "the quadratic cost on a regression: 1/2 (t - o)^2 near the noise's 1/2 0.05^2",
    )


# ----------------------------------------------------------------------------- 5
def gd_variants(t: Tour) -> None:
    """Batch, stochastic and mini-batch gradient descent, each with its own learning rate,
    on the same budget of sample gradients (20 epochs of 600 points)."""
    result = t.compare("sweeps/gd_variants")
    at5 = sweep_values(result, "train_eval_loss@5")
    t.expect(
        "gd_variants.stochastic.loss@5.max",
        max(at5["stochastic"]),
        0.0,
        0.35,
        "after 5 epochs (3,000 sample gradients each): stochastic GD is furthest",
    )
    t.expect(
        "gd_variants.mini_batch.loss@5.mean",
        float(np.mean(at5["mini_batch"])),
        0.4,
        0.7,
        "mini-batch GD in between",
    )
    t.expect(
        "gd_variants.batch.loss@5.min",
        min(at5["batch"]),
        0.8,
        1.3,
        "batch GD has made only 5 updates",
    )
    mini_19 = np.array(sweep_values(result, "train_eval_loss@1")["mini_batch"])
    batch_19 = np.array(sweep_values(result, "train_eval_loss@19")["batch"])
    t.expect(
        "gd_variants.per_update.mini_minus_batch.mean",
        float((mini_19 - batch_19).mean()),
        0.0,
        1.0,
        "after 19 updates each, batch GD's loss is below mini-batch's (mean of 3 seeds): "
        "per update, the full gradient is the best step",
    )
    for figure in ("budget", "curves"):
        t.keep(result.sweep_dir / "plots" / f"{figure}.png", f"05-gd-variants-{figure}.png")


# ----------------------------------------------------------------------------- 6
def backprop(t: Tour) -> None:
    """Backpropagation, checked against central differences for every layer and loss."""
    from dlrun.nn import gradcheck

    reports = gradcheck.check_registered()
    failed = [r.name for r in reports if not r.passed]
    worst = max((row.max_rel for r in reports for row in r.rows), default=0.0)
    t.say(f"  gradcheck: {len(reports)} components, {len(failed)} failed")
    t.expect("gradcheck.failed", len(failed), 0, 0, "components whose gradients disagree")
    t.expect(
        "gradcheck.worst_relative_error",
        worst,
        0.0,
        1e-4,
        "largest |analytic - numeric| / |numeric| over every entry checked",
    )


# ----------------------------------------------------------------------------- 7
def layer_factor(run: Any, epoch: int = 1) -> float:
    """How much the gradient norm grows per hidden layer, from the first hidden layer to
    the last, at ``epoch``: (||dC/dW_last|| / ||dC/dW_first||)^(1 / (L - 1)) over the L
    hidden layers (the output layer left out)."""
    row = next(r for r in run.metrics() if int(r["epoch"]) == epoch)
    norms = [float(v) for k, v in row.items() if k.startswith("grad_norm/")][:-1]
    return (norms[-1] / norms[0]) ** (1.0 / (len(norms) - 1))


def vanishing(t: Tour) -> None:
    """Vanishing gradients: with sigmoid, each layer towards the input gets about a quarter
    of the gradient; with ReLU the gradient keeps its size. Exploding gradients, clipping."""
    from dlrun.runs import overlays

    first = {}
    for act, lo, hi in (("sigmoid", 3.0, 7.0), ("relu", 0.7, 1.5)):
        runs = [t.train(f"vanishing_{act}", f"seed={seed}") for seed in SEEDS]
        first[act] = runs[0]
        factors = [layer_factor(run) for run in runs]
        t.expect(
            f"vanishing_{act}.factor_per_layer.min",
            min(factors),
            lo,
            hi,
            f"{act}: the gradient norm's growth per layer towards the output, epoch 1",
        )
        t.expect(
            f"vanishing_{act}.factor_per_layer.max",
            max(factors),
            lo,
            hi,
            f"{act}: the same, largest of seeds 0-2",
        )
    exploding(t)
    t.draw(
        "07-grad-norms-by-depth.png",
        lambda out: overlays.grad_norms_by_depth([first["sigmoid"].path, first["relu"].path], out)[
            0
        ],
    )


def exploding(t: Tour) -> None:
    """Exploding gradients: 12 tanh layers with N(0, 1) weights, where |f'(z) w| > 1 compounds
    towards the input; clipping bounds every step."""
    clipped = t.train("exploding_clip")
    row = clipped.metrics()[0]
    t.expect(
        "exploding_clip.dense_1_over_dense_11",
        row["grad_norm/dense_1"] / row["grad_norm/dense_11"],
        10.0,
        1000.0,
        "epoch 1, clipped run: the gradient of layer 2 over that of layer 12",
    )
    free = t.train("exploding_clip", "train.clip=null", run_name="exploding_no_clip")
    t.keep(free.plots / "steps.png", "07-exploding-steps.png")
    result = t.compare("sweeps/clipping")
    diverged = sum(r["status"] == "diverged" for r in result.rows if r["variant"] == "no_clip")
    t.expect("clipping.no_clip.diverged", diverged, 2, 3, "runs of 3 that diverge without clipping")
    val = sweep_values(result, "val_loss")
    worst = max(max(v) for k, v in val.items() if k != "no_clip")
    t.expect(
        "clipping.clipped.val_loss.max",
        worst,
        0.0,
        0.15,
        "every clipped run trains: the worst val cost of the three kinds of clipping, "
        "against 0.25 for predicting the mean",
    )
    t.keep(result.sweep_dir / "plots" / "curves.png", "07-clipping-curves.png")


# ----------------------------------------------------------------------------- 8
def regularization(t: Tour) -> None:
    """Overfitting a 40-point training set, and five cures: L1, L2, dropout, early stopping,
    offline dataset augmentation. The gap is measured in evaluation mode."""
    result = t.compare("sweeps/regularization")
    gap = {k: float(np.mean(v)) for k, v in sweep_values(result, "gap").items()}
    t.expect(
        "regularization.gap.none",
        gap["none"],
        0.1,
        0.25,
        "no regularization: train accuracy (evaluation mode) - val accuracy, mean of 3 seeds",
    )
    for variant in ("l1", "l2", "dropout", "early_stopping", "augmentation"):
        t.expect(
            f"regularization.gap_narrowed.{variant}",
            gap["none"] - gap[variant],
            -0.02,
            0.3,
            f"{variant}: how much it narrows the mean gap (none widens it by more than 0.02, "
            "about two points of 40 over 3 seeds)",
        )
    narrowed = [
        gap["none"] - gap[v] for v in ("l1", "l2", "dropout", "early_stopping", "augmentation")
    ]
    t.expect(
        "regularization.gap_narrowed.mean",
        float(np.mean(narrowed)),
        0.03,
        0.3,
        "how much the five regularizers narrow the gap, on average",
    )
    sparsity = sweep_values(result, "sparsity")
    t.expect(
        "regularization.l1.sparsity.min",
        min(sparsity["l1"]),
        0.9,
        1.0,
        "L1: share of weights with |w| < 1e-3",
    )
    t.expect(
        "regularization.l2.sparsity.max",
        max(sparsity["l2"]),
        0.0,
        0.2,
        "L2 shrinks weights but leaves few at zero",
    )
    running = np.array(sweep_values(result, "accuracy")["dropout"])
    evaluated = np.array(sweep_values(result, "train_eval_accuracy")["dropout"])
    t.expect(
        "regularization.dropout.eval_minus_running",
        float(np.mean(evaluated - running)),
        0.0,
        0.3,
        "dropout: training accuracy in evaluation mode above the running one",
    )
    for figure in ("curves", "weights"):
        t.keep(result.sweep_dir / "plots" / f"{figure}.png", f"08-regularization-{figure}.png")


# ----------------------------------------------------------------------------- 9
def optimizers(t: Tour) -> None:
    """The nine optimizers: their paths on three surfaces, computed by dlrun's own update
    rules."""
    from dlrun.optim import surfaces
    from dlrun.runs import optimizer_paths

    result = t.compare("sweeps/optimizers")
    first = sweep_values(result, "effective_lr@1")
    last = sweep_values(result, "effective_lr@20")
    # settings are "name,lr" (the sweep zips the two): keyed by the optimizer's name
    shrink = {
        k.split(",")[0]: float(np.mean(np.array(last[k]) / np.array(first[k]))) for k in first
    }
    t.expect(
        "optimizers.gd.step_ratio",
        shrink["gd"],
        0.999,
        1.001,
        "GD's effective rate ||dw|| / ||g|| in epoch 20 over epoch 1: its lr, unchanged",
    )
    t.expect(
        "optimizers.adagrad.step_ratio",
        shrink["adagrad"],
        0.05,
        0.35,
        "AdaGrad's: the sum of squared gradients only grows, the step only shrinks",
    )
    t.expect(
        "optimizers.adam.step_ratio",
        shrink["adam"],
        0.5,
        1.2,
        "Adam's: a running average forgets, the step stays about the same",
    )
    for figure in ("curves", "step_sizes"):
        t.keep(result.sweep_dir / "plots" / f"{figure}.png", f"09-optimizers-{figure}.png")
    t.draw("09-optimizer-paths.png", optimizer_paths.optimizers)
    valley = surfaces.get("valley")
    end = {
        name: float(valley.value(path[-1])) for name, path in surfaces.trajectories(valley).items()
    }
    t.expect(
        "valley.gd_over_momentum",
        end["gd"] / end["momentum"],
        100.0,
        1e6,
        "on the narrow valley, GD's f after 100 steps over momentum's",
    )
    local = surfaces.get("local")
    ends = surfaces.trajectories(local)
    t.expect(
        "local.momentum_x",
        float(ends["momentum"][-1, 0]),
        -1.2,
        -0.9,
        "momentum carries over the ridge into the global minimum at x = -1.06",
    )
    t.expect(
        "local.gd_x",
        float(ends["gd"][-1, 0]),
        0.8,
        1.1,
        "GD settles in the local minimum at x = 0.93",
    )


# ----------------------------------------------------------------------------- 10
def cnn(t: Tour) -> None:
    """Convolution and pooling worked by hand, then a convolutional network on
    Fashion-MNIST: 6,000 training images, 2 epochs."""
    from dlrun.runs import conv_pictures as C

    result = C.convolve(C.COURSE_IMAGE, C.COURSE_FILTER)
    t.say(C.conv_report())
    t.expect(
        "conv.top_left",
        float(result[0, 0]),
        4.0,
        4.0,
        "the course's 5x5 image * 3x3 filter: 4 in the top-left corner",
    )
    t.draw("10-convolution.png", C.conv)
    t.draw("10-pooling.png", C.pooling)
    run = t.train(
        "cnn_fashion_mnist",
        "data.n_train=6000",
        "train.epochs=2",
        run_name="cnn_fashion_mnist_6000",
    )
    t.expect(
        "cnn_6000.test_accuracy",
        run.read_json("summary.json")["final"]["test_accuracy"],
        0.8,
        0.9,
        "2 epochs on a tenth of Fashion-MNIST, tested on all 10,000",
    )
    t.keep(run.plots / "filters.png", "10-filters.png")
    t.keep(run.plots / "feature_maps.png", "10-feature-maps.png")


# ----------------------------------------------------------------------------- 11
def rnn_adding(t: Tour) -> RunDir:
    """The simple RNN on the adding problem at T = 100 (lessons 11 and 12 both show it)."""
    return t.once("rnn_adding", lambda: t.train("rnn_adding"))


def rnn(t: Tour) -> None:
    """A simple RNN trained with backpropagation through time: a sine's next value is
    easy; the adding problem at T = 100 is not."""
    sine = t.train("rnn_sine")
    t.expect(
        "rnn_sine.test_loss",
        sine.read_json("summary.json")["final"]["test_loss"],
        0.00125,
        0.006,
        "predicting the next value of noisy sines, above the noise floor 1/2 0.05^2",
    )
    t.keep(sine.plots / "curves.png", "11-rnn-sine-curves.png")
    adding = rnn_adding(t)
    t.expect(
        "rnn_adding.test_loss",
        adding.read_json("summary.json")["final"]["test_loss"],
        0.07,
        0.1,
        "the RNN at T = 100 stays at 0.083, the cost of predicting the mean",
    )
    t.keep(adding.plots / "curves.png", "11-rnn-adding-curves.png")


# ----------------------------------------------------------------------------- 12
def lstm(t: Tour) -> None:
    """The LSTM solves the adding problem at T = 100 on every seed, where the simple RNN
    cannot; the gradient reaching the first steps says why."""
    from dlrun.runs import overlays

    runs = [t.train("lstm_adding", f"seed={seed}") for seed in SEEDS]
    losses = [run.read_json("summary.json")["final"]["test_loss"] for run in runs]
    t.expect(
        "lstm_adding.test_loss.max",
        max(losses),
        0.0,
        0.005,
        "LSTM, T = 100: the worst of seeds 0-2, far below the 0.083 of predicting the mean",
    )
    t.keep(runs[0].plots / "curves.png", "12-lstm-adding-curves.png")
    rnn = rnn_adding(t)
    path, rows = overlays.through_time([rnn.path, runs[0].path], t.out / "12-through-time.png")
    t.pictures.append(path)
    ratio = {r["type"]: r["ratio"] for r in rows if r["when"] == "after training"}
    t.expect(
        "lstm_adding.grad_first_over_last",
        ratio["lstm"],
        1e-3,
        10.0,
        "after training, ||dC/dh_1|| / ||dC/dh_T|| of the LSTM: the gradient reaches step 1",
    )
    t.expect(
        "rnn_adding.grad_first_over_last",
        ratio["rnn"],
        0.0,
        1e-6,
        "the same for the RNN: nothing reaches the first steps",
    )
    short = t.train("lstm_adding", "train.epochs=5", run_name="lstm_adding_5_epochs")
    t.expect(
        "lstm_adding_5_epochs.test_loss",
        short.read_json("summary.json")["final"]["test_loss"],
        0.07,
        0.1,
        "try this: after 5 epochs the LSTM has not yet broken away from the baseline",
    )


#: The tour in the course's order: (section number, short name, lesson).
LESSONS: list[tuple[int, str, Callable[[Tour], None]]] = [
    (1, "perceptron", perceptron),
    (2, "depth", depth),
    (3, "activations", activations),
    (4, "losses", losses),
    (5, "gd_variants", gd_variants),
    (6, "backprop", backprop),
    (7, "vanishing", vanishing),
    (8, "regularization", regularization),
    (9, "optimizers", optimizers),
    (10, "cnn", cnn),
    (11, "rnn", rnn),
    (12, "lstm", lstm),
]
