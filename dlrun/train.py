"""Training: the loop of epochs and batches, with metrics, checkpoints and resume.

    from dlrun.train import train
    result = train("configs/xor_mlp.yaml", runs_dir="runs", overrides=["optimizer.lr=0.5"])
    result.summary["final"]["test_accuracy"]

Batches: ``train.batch_size: full`` is batch gradient descent (one update per
epoch), ``1`` is online stochastic gradient descent (one randomly chosen
sample per update), ``n`` is mini-batch (reshuffled every epoch, the last
partial batch kept).

Randomness: one seed; independent streams for data, initialisation,
shuffling, dropout and augmentation. Their states are in every checkpoint,
with the epoch's sample order and the metric sums of the epoch so far, so a
resumed run continues exactly where it stopped (same metrics, same weights).
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlrun import checkpoint
from dlrun import config as C
from dlrun.callbacks import BestTracker
from dlrun.data.base import Split, Splits
from dlrun.errors import CheckpointError, DataError, DlrunError
from dlrun.kernels.metrics import argmax_hits
from dlrun.memory import release_freed_memory, release_pages
from dlrun.network import EVAL_BATCH, Network
from dlrun.progress import Progress
from dlrun.registry import datasets, optimizers, regularizers, schedules
from dlrun.runs import RunDir

STREAMS = ("data", "init", "shuffle", "dropout", "augment")


class _RolledBack(Exception):
    """Raised inside the batch loop after a rollback to the last checkpoint."""


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def make_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent random streams, one per use, from the run's single seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.Generator(np.random.PCG64(s)) for name, s in zip(STREAMS, children)}


def load_data(cfg: dict[str, Any], rng: np.random.Generator, root: Path | None = None) -> Splits:
    cls = datasets.get(cfg["data"]["name"])
    settings = {k: v for k, v in cfg["data"].items()}
    if "name" not in cls.Config.model_fields:
        settings.pop("name")
    return cls(cls.Config(**settings), root=root).load(rng)


def build_network(cfg: dict[str, Any], splits: Splits, rng: np.random.Generator) -> Network:
    net = Network.from_config(cfg, splits.n_classes)
    net.build(splits.input_shape, rng, np.dtype(cfg["dtype"]))
    return net


class Targets:
    """How labels become what the loss compares the output with.

    cross_entropy: integer labels. binary_cross_entropy: labels as 0/1 floats.
    quadratic on a classification task: one-hot rows (or the label itself for
    one output unit), with -1 instead of 0 when the last layer's output range
    is symmetric (tanh, sign, softsign), as the perceptron's +-1 targets.
    """

    def __init__(self, net: Network, task: str) -> None:
        self.net, self.task = net, task
        self.n_out = net.output_shape[-1]
        last = net.layers[-1]
        rng_ = getattr(last, "output_range", None)
        self.low = -1.0 if rng_ is not None and rng_[0] < 0 else 0.0

    def encode(self, y: np.ndarray) -> np.ndarray:
        loss = self.net.loss
        if self.task != "classification" or loss.integer_targets:
            return y
        if self.n_out == 1:
            t = np.where(y == 1, 1.0, self.low)[..., None]
        else:
            t = np.full((*y.shape, self.n_out), self.low)
            np.put_along_axis(t, y[..., None].astype(np.int64), 1.0, axis=-1)
        return t.astype(self.net.dtype)

    def predict_labels(self, loss_input: np.ndarray) -> np.ndarray:
        """Class labels from the loss input (logits when fused, outputs otherwise)."""
        if self.n_out == 1:
            mid = 0.0 if self.net.fused else (self.low + 1.0) / 2
            return (loss_input[..., 0] > mid).astype(np.int64)
        return np.argmax(loss_input, axis=-1)

    def count_correct(self, loss_input: np.ndarray, y: np.ndarray) -> int:
        """How many predicted labels equal ``y``."""
        if self.n_out == 1:
            return int(np.sum(self.predict_labels(loss_input) == y))
        return argmax_hits(loss_input.reshape(-1, self.n_out), y.reshape(-1))


def evaluate(
    net: Network, split: Split, targets: Targets, batch_size: int = EVAL_BATCH
) -> dict[str, float]:
    """Loss (and accuracy for classification) of ``net`` on a split, evaluation mode."""
    total, correct, n = 0.0, 0, 0
    for i in range(0, len(split), batch_size):
        x = split.take(slice(i, i + batch_size), net.dtype)
        y = split.y[i : i + batch_size]
        value, out = net.loss_of(x, targets.encode(y))
        rows = math.prod(out.shape[:-1])
        total += value * rows
        n += rows
        if targets.task == "classification":
            correct += targets.count_correct(out, y)
    out_metrics = {"loss": total / max(n, 1)}
    if targets.task == "classification":
        out_metrics["accuracy"] = correct / max(n, 1)
    return out_metrics


class Trainer:
    """Runs the epochs of one run and keeps its run directory up to date."""

    def __init__(
        self,
        cfg: dict[str, Any],
        run: RunDir,
        splits: Splits,
        net: Network,
        streams: dict[str, np.random.Generator],
        progress: Progress,
        callbacks: list[Callable[[Trainer], None]] | None = None,
    ) -> None:
        self.cfg, self.run, self.splits, self.net = cfg, run, splits, net
        self.streams, self.progress = streams, progress
        self.callbacks = callbacks or []
        tcfg = cfg["train"]
        self.epochs = tcfg["epochs"]
        n = len(splits.train)
        self.batch_size = n if tcfg["batch_size"] == "full" else min(int(tcfg["batch_size"]), n)
        self.n_batches = math.ceil(n / self.batch_size)
        self.targets = Targets(net, splits.task)
        ocfg = cfg["optimizer"]
        opt_cls = optimizers.get(ocfg["name"])
        self.optimizer = opt_cls(opt_cls.Config(**ocfg), net.params.size, net.dtype)
        scfg = cfg["schedule"]
        sched_cls = schedules.get(scfg["name"])
        self.schedule = sched_cls(sched_cls.Config(**scfg), ocfg["lr"])
        self.regularizers = []
        for spec in cfg["regularizers"]:
            reg_cls = regularizers.get(spec["name"])
            reg = reg_cls(reg_cls.Config(**spec))
            self.regularizers.append((reg, *self._penalised(reg.config)))
        self.clip_config = self.augment_config = None
        if tcfg.get("clip"):
            from dlrun.clipping import ClipConfig

            self.clip_config = ClipConfig(**tcfg["clip"])
        self.augment = tcfg.get("augment")
        if self.augment:
            from dlrun.data.augment import AugmentConfig

            self.augment_config = AugmentConfig(**self.augment)
        for layer in net.layers:
            layer.set_rng(streams["dropout"])
        es = tcfg.get("early_stopping")
        monitor = es["monitor"] if es else ("val_loss" if splits.val is not None else "loss")
        self.best = BestTracker(
            monitor,
            es["mode"] if es else "auto",
            es["min_delta"] if es else 0.0,
            es["patience"] if es else None,
        )
        # per-layer gradient norms are reported for weight matrices (W, or the first tensor)
        names = net.tensor_names
        picked = [i for i, t in enumerate(names) if t.endswith(".W")] or list(range(len(names)))[:1]
        self.weight_layers = [(names[i].rsplit(".", 1)[0], i) for i in picked]
        # position and sums of the epoch in progress
        self.epoch = self.step = self.batch = 0
        self.perm = np.arange(n)
        self.sums: dict[str, float] = {}
        self.rows: list[dict[str, Any]] = []
        self.lr_scale = 1.0
        self.rollbacks = 0
        self.stop_requested = False
        self.status = "running"
        self.reason = ""

    def _penalised(self, rcfg: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The parameter and gradient views a regularizer applies to."""
        names = set(rcfg.layers or [])
        ws, gs = [], []
        for layer, key, value in self.net.param_items():
            if names and layer.name not in names:
                continue
            if key.startswith("b") and not rcfg.include_biases:
                continue
            ws.append(value)
            gs.append(layer.grads[key])
        return ws, gs

    # ------------------------------------------------------------------ state
    def meta(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "batch": self.batch,
            "sums": self.sums,
            "rng": {k: g.bit_generator.state for k, g in self.streams.items()},
            "schedule": self.schedule.state_dict(),
            "best": self.best.state_dict(),
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "dtype": str(self.net.dtype),
        }

    def save(self, name: str) -> None:
        checkpoint.save(  # written at once: the live arrays, not copies of them
            self.run.checkpoints / name,
            self.net.state_dict(copy=False),
            self.optimizer.state_dict(copy=False),
            self.meta(),
            self.perm,
        )

    def restore(self, path: Path, keep_scale: bool = False) -> None:
        params, opt, meta, perm = checkpoint.load(path)
        self.net.load_state_dict(params)
        self.optimizer.load_state_dict(opt)
        try:
            for k, g in self.streams.items():
                g.bit_generator.state = meta["rng"][k]
            self.epoch, self.step, self.batch = meta["epoch"], meta["step"], meta["batch"]
            self.sums = meta["sums"]
            self.schedule.load_state_dict(meta["schedule"])
            self.best.load_state_dict(meta["best"])
            if not keep_scale:
                self.lr_scale, self.rollbacks = meta["lr_scale"], meta["rollbacks"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has incomplete metadata: {exc}") from None
        if len(perm) == len(self.perm):
            self.perm = perm

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict[str, Any]:
        start = time.perf_counter()
        if not (self.run.checkpoints / "last.npz").exists():
            self.save("last.npz")  # the first "last good" state, for rollback
            self.record_grad_through_time("initial")
        previous = signal.getsignal(signal.SIGINT)
        try:
            signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: no Ctrl-C handling
            previous = None
        try:
            # overflow and NaN are caught by the divergence guard, which says where they started
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self._loop()
        except KeyboardInterrupt:  # a second Ctrl-C: the last checkpoint stays as it was
            self.status, self.reason = "interrupted", "aborted by a second Ctrl-C"
            raise
        except Exception as exc:
            self.status = "failed"
            self.reason = (
                str(exc) if isinstance(exc, DlrunError) else f"{type(exc).__name__}: {exc}"
            )
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self.progress.close()
            summary = self.finish(time.perf_counter() - start)
        return summary

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.progress.note("Ctrl-C: stopping after this batch (press again to abort)")

    def _loop(self) -> None:
        n = len(self.splits.train)
        self.progress.start(self.epochs, self.n_batches, self.epoch, self.batch)
        while self.epoch < self.epochs:
            t0 = time.perf_counter()
            if self.batch == 0:
                self.perm = (
                    self.streams["shuffle"].permutation(n)
                    if self.cfg["train"]["shuffle"]
                    else np.arange(n)
                )
                self.sums = {"loss": 0.0, "correct": 0.0, "count": 0.0, "seconds": 0.0}
                for name, _ in self.weight_layers:
                    self.sums[f"grad_norm/{name}"] = 0.0
            try:
                while self.batch < self.n_batches:
                    if not self._train_batch():
                        return
                    for callback in self.callbacks:
                        callback(self)
                    if self.stop_requested:
                        self.sums["seconds"] += time.perf_counter() - t0
                        self.save("last.npz")
                        self.status = "interrupted"
                        self.reason = "stopped by Ctrl-C"
                        return
            except _RolledBack:
                continue  # back at the last checkpoint's position
            self.sums["seconds"] += time.perf_counter() - t0
            self._end_epoch()
            if self.best.should_stop:
                self.reason = (
                    f"early stopping: {self.best.monitor} did not improve for "
                    f"{self.best.patience} epochs"
                )
                self.run.log(self.reason)
                break
        self.status = "completed"

    def _train_batch(self) -> bool:
        """One update. False when training must stop (diverged)."""
        net, b = self.net, self.batch
        idx = self.perm[b * self.batch_size : (b + 1) * self.batch_size]
        x = self.splits.train.take(idx, net.dtype)
        y = self.splits.train.y[idx]
        if self.augment_config is not None:
            from dlrun.data.augment import augment

            x = augment(x, self.streams["augment"], self.augment_config)
        lr = self.schedule.lr(self.epoch, self.step) * self.lr_scale
        value, out = net.train_step_grads(x, self.targets.encode(y))
        for reg, ws, gs in self.regularizers:
            value += reg.penalty(ws)
            reg.add_grad(ws, gs)
        # one float64 pass over every gradient: NaN or inf anywhere makes the sum non-finite
        squares = net.grad_sum_squares().tolist()  # a few floats: summed in Python
        norms = [math.sqrt(squares[i]) for _, i in self.weight_layers]
        if not (math.isfinite(value) and math.isfinite(sum(squares))):
            return self._diverged(value, x)
        if self.clip_config is not None:
            from dlrun.clipping import apply_clipping

            apply_clipping(self.clip_config, [layer.grads[k] for layer, k, _ in net.param_items()])
        self.optimizer.step(net.params, net.grads, lr)
        rows = math.prod(out.shape[:-1])
        self.sums["loss"] += value * rows
        self.sums["count"] += rows
        if self.targets.task == "classification":
            self.sums["correct"] += self.targets.count_correct(out, y)
        for (name, _), v in zip(self.weight_layers, norms):
            self.sums[f"grad_norm/{name}"] += v
        self.step += 1
        self.batch += 1
        self.progress.batch(value, self.sums)
        return True

    def _where_nonfinite(self, x: np.ndarray) -> str:
        """The first layer whose output or gradient is not finite."""
        for layer in self.net.layers:
            x = layer.forward(x, False)
            if not np.isfinite(x).all():
                return f"output of layer '{layer.name}'"
        for layer in self.net.layers:
            for key, g in layer.grads.items():
                if not np.isfinite(g).all():
                    return f"gradient of '{layer.name}.{key}'"
        return "the loss"

    def _diverged(self, value: float, x: np.ndarray) -> bool:
        where = self._where_nonfinite(x)
        msg = (
            f"loss or gradient became non-finite (loss={value}) at epoch {self.epoch + 1}, "
            f"step {self.step + 1}; first non-finite values in the {where}"
        )
        self.run.log(msg)
        policy = self.cfg["train"]["divergence"]
        if policy["policy"] == "rollback" and self.rollbacks < policy["max_rollbacks"]:
            self.rollbacks += 1
            self.restore(self.run.checkpoints / "last.npz", keep_scale=True)
            self.lr_scale *= 0.5
            note = (
                f"{msg}; rolled back to the last checkpoint with lr x{self.lr_scale:g} "
                f"(rollback {self.rollbacks}/{policy['max_rollbacks']})"
            )
            self.run.log(note)
            self.progress.note(note)
            raise _RolledBack
        self.status, self.reason = "diverged", msg
        return False

    def _end_epoch(self) -> None:
        s = self.sums
        metrics: dict[str, Any] = {"epoch": self.epoch + 1, "loss": s["loss"] / max(s["count"], 1)}
        if self.targets.task == "classification":
            metrics["accuracy"] = s["correct"] / max(s["count"], 1)
        if self.splits.val is not None:
            for k, v in evaluate(self.net, self.splits.val, self.targets).items():
                metrics[f"val_{k}"] = v
        metrics["lr"] = self.schedule.lr(self.epoch, max(self.step - 1, 0)) * self.lr_scale
        metrics["seconds"] = s["seconds"]
        for name, _ in self.weight_layers:
            metrics[f"grad_norm/{name}"] = s[f"grad_norm/{name}"] / max(self.n_batches, 1)
        self.rows = [r for r in self.rows if r["epoch"] <= self.epoch] + [metrics]
        self.run.write_metrics(self.rows)
        self.schedule.observe(self.epoch, metrics)
        improved = self.best.update(self.epoch + 1, metrics)
        self.epoch += 1
        self.batch = 0
        if improved:
            self.save("best.npz")
        if self.epoch % self.cfg["train"]["checkpoint_every"] == 0 or self.epoch == self.epochs:
            self.save("last.npz")
        self.progress.epoch(metrics)

    def record_grad_through_time(self, when: str) -> None:
        """For recurrent layers: ||dC/dS_t|| for every time step t of one batch (the first
        training samples), written to grad_through_time.json as {when: {layer: [...]}}.

        Runs on a copy of the dropout stream so that training is unchanged.
        """
        recurrent = [layer for layer in self.net.layers if hasattr(layer, "state_grad_norms")]
        if not recurrent:
            return
        stream = self.streams["dropout"]
        saved = stream.bit_generator.state
        n = min(64, len(self.splits.train))
        x = self.splits.train.take(slice(0, n), self.net.dtype)
        self.net.train_step_grads(x, self.targets.encode(self.splits.train.y[:n]))
        stream.bit_generator.state = saved
        record = self.run.read_json("grad_through_time.json")
        record[when] = {layer.name: list(map(float, layer.state_grad_norms)) for layer in recurrent}
        self.run.write_json("grad_through_time.json", record)

    # ------------------------------------------------------------------ end
    def finish(self, seconds: float) -> dict[str, Any]:
        """Restore the best weights, evaluate, write summary.json and plots."""
        summary: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "epochs": self.epoch,
            "steps": self.step,
            "seconds": seconds,
            "monitor": self.best.monitor,
            "best_epoch": self.best.best_epoch if self.best.best_epoch >= 0 else None,
        }
        final: dict[str, Any] = dict(self.rows[-1]) if self.rows else {}
        best_row = next((r for r in self.rows if r["epoch"] == self.best.best_epoch), None)
        es = self.cfg["train"].get("early_stopping")
        restore = es["restore_best"] if es else False
        if self.status == "completed" and restore and (self.run.checkpoints / "best.npz").exists():
            params = checkpoint.load_params(self.run.checkpoints / "best.npz")
            self.net.load_state_dict(params)
            summary["restored_best_epoch"] = self.best.best_epoch
        if self.status == "completed":
            self.record_grad_through_time("final")
        # the training set is not needed any more: freed before the test set is read and
        # matplotlib is imported, so neither adds to the run's peak memory
        self.splits = self.splits.for_figures()
        release_freed_memory()
        if self.status in ("completed", "interrupted") and self.splits.test is not None:
            for k, v in evaluate(self.net, self.splits.test, self.targets).items():
                final[f"test_{k}"] = v
            release_pages(self.splits.test.x)  # read once, from the cache's mapped file
        ws = [layer.params[k] for layer, k, _ in self.net.param_items() if k == "W"]
        if ws:  # fraction of near-zero weights: L1 drives weights to exactly zero, L2 does not
            from dlrun.regularizers import sparsity

            summary["sparsity"] = sparsity(ws)
        summary["final"] = final
        summary["best"] = dict(best_row) if best_row else {}
        summary["rollbacks"] = self.rollbacks
        self.run.write_summary(summary)
        self.run.log(f"status {self.status}{': ' + self.reason if self.reason else ''}")
        try:
            from dlrun import plots  # matplotlib: imported once the training set is freed

            plots.run_plots(self.run, self.net, self.splits, self.targets, self.augment)
        except Exception as exc:  # a plot must never lose a run
            self.run.log(f"plots failed: {type(exc).__name__}: {exc}")
        return summary


def train(
    config: str | Path | dict[str, Any],
    runs_dir: str | Path = "runs",
    overrides: list[str] | None = None,
    name: str | None = None,
    resume: str | Path | None = None,
    progress: str = "silent",
    callbacks: list[Callable[[Trainer], None]] | None = None,
    root: Path | None = None,
) -> RunResult:
    """Train one network: the library function behind ``dlrun train``.

    ``config`` is a YAML path or an already-resolved dict; ``resume`` a run
    directory to continue (its config is used; overrides are not allowed).
    """
    overrides = list(overrides or [])
    if resume is not None:
        if overrides:
            raise DlrunError("--set cannot be combined with --resume (the run keeps its config)")
        run = RunDir.open(Path(resume))
        cfg = C.resolve(run.config(), source=str(run.path / "config.yaml"))
        summary = run.summary()
        if summary.get("status") == "completed":
            raise CheckpointError(f"run {run.path} is already completed; nothing to resume")
    elif isinstance(config, dict):
        cfg = C.resolve(C.apply_overrides(config, overrides))
    else:
        cfg = C.load(config, overrides)
    if name:
        cfg["name"] = name
    streams = make_streams(cfg["seed"])
    try:
        splits = load_data(cfg, streams["data"], root)
    except (OSError, ValueError) as exc:  # a DlrunError already says what and where
        raise DataError(f"dataset '{cfg['data']['name']}' could not be loaded: {exc}") from None
    net = build_network(cfg, splits, streams["init"])
    if resume is None:
        run = RunDir.create(Path(runs_dir), cfg.get("name") or "run")
        run.write_config(cfg, overrides)
        run.log(f"created; config {config if not isinstance(config, dict) else '(dict)'}")
    trainer = Trainer(cfg, run, splits, net, streams, Progress(progress, run.path.name), callbacks)
    del splits  # the trainer's reference only: it lets the training set go before the figures
    if resume is not None:
        trainer.restore(run.checkpoints / "last.npz")
        trainer.rows = [r for r in run.metrics() if r["epoch"] <= trainer.epoch]
        trainer.run.log(f"resumed at epoch {trainer.epoch}, batch {trainer.batch}")
    summary = trainer.fit()
    return RunResult(run.path, json.loads(json.dumps(summary, default=float)))
