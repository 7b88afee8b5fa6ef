"""The training loop: epochs and batches, metrics, checkpoints, divergence guard.

Batches: ``train.batch_size: full`` is batch gradient descent (one update per
epoch), ``1`` is online stochastic gradient descent (one randomly chosen
sample per update), ``n`` is mini-batch (reshuffled every epoch, the last
partial batch kept).

Randomness: one seed; independent streams for data, initialisation,
shuffling, dropout and augmentation. Their states are in every checkpoint,
with the epoch's sample order and the metric sums of the epoch so far, so a
resumed run continues exactly where it stopped (same metrics, same weights).
What the ``log:`` section adds (evaluation of the training set, step sizes, totals) draws
nothing from them.

metrics.csv, one row per epoch: ``loss`` and ``accuracy`` (the mean over the epoch's
batches, measured while the weights change), ``val_*`` (the validation set at the
epoch's end, evaluation mode), ``lr``, ``seconds`` (the epoch's updates, not its
evaluation) and ``grad_norm/<layer>`` (the mean over the batches of ||dC/dW|| of each
weight matrix, before clipping, from the input's layer to the output's); and with

- ``log.train_eval``: ``train_eval_loss``, ``train_eval_accuracy``: the training set at
  the epoch's end in evaluation mode (dropout off; what the regularization gap compares),
- ``log.totals``: ``updates`` and ``train_seconds`` so far (the first update of a process
  not timed: it also loads the compiled kernels),
- ``log.step_sizes``: ``update_norm``, the mean step length ||w_after - w_before|| over
  all parameters, and ``effective_lr``, the mean of ||w_after - w_before|| / ||g||: the
  learning rate the optimizer really applied (plain GD: lr; AdaGrad: falling).

``log.every_step`` also keeps every update's loss and gradient norms (steps.csv, see
:mod:`dlrun.runs.steps`).

A run that diverges in the middle of an epoch gets a last row for the batches before it
(no validation), so its curves and gradient norms reach the step where it diverged.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlrun.data.augment import augment, augmented_copies
from dlrun.data.base import Splits
from dlrun.data.memory import release_freed_memory, release_pages
from dlrun.errors import CheckpointError, DlrunError
from dlrun.kernels.penalties import sum_squares
from dlrun.nn.network import Network
from dlrun.nn.targets import Targets
from dlrun.optim.clipping import apply_clipping
from dlrun.optim.regularizers import sparsity
from dlrun.runs import checkpoint
from dlrun.runs.rundir import RunDir
from dlrun.runs.steps import FILE as STEPS_FILE
from dlrun.runs.steps import StepRecord
from dlrun.training.callbacks import record_grad_through_time
from dlrun.training.evaluation import evaluate
from dlrun.training.parts import Parts
from dlrun.training.progress import Progress

#: What one training batch leads to.
NEXT, STOP, ROLLED_BACK = "next", "stop", "rolled back"


class Trainer:
    """Runs the epochs of one run and keeps its run directory up to date."""

    def __init__(
        self,
        cfg: dict[str, Any],
        run: RunDir,
        splits: Splits,
        net: Network,
        streams: dict[str, np.random.Generator],
        parts: Parts,
        progress: Progress,
        callbacks: list[Callable[[Trainer], None]] | None = None,
    ) -> None:
        self.cfg, self.run, self.splits, self.net = cfg, run, splits, net
        self.streams, self.progress = streams, progress
        self.callbacks = callbacks or []
        tcfg = cfg["train"]
        self.epochs = tcfg["epochs"]
        log = cfg.get("log") or {}
        self.train_eval = bool(log.get("train_eval"))
        self.step_sizes = bool(log.get("step_sizes"))
        self.totals = bool(log.get("totals"))
        self.steps = StepRecord(run.path / STEPS_FILE) if log.get("every_step") else None
        self.timed = False  # the first update of this process is not timed in train_seconds
        # log.step_sizes: the parameters before each update, in one buffer for the run
        self._before = np.empty_like(net.params) if self.step_sizes else None
        # the set the batches come from: the training set, or (offline augmentation) the
        # training set and its augmented copies, drawn here, before any checkpoint is read
        self.train_set = splits.train
        if parts.augment is not None and parts.augment.copies:
            self.train_set = augmented_copies(
                splits.train, streams["augment"], parts.augment, net.dtype
            )
        n = len(self.train_set)
        self.batch_size = n if tcfg["batch_size"] == "full" else min(int(tcfg["batch_size"]), n)
        self.n_batches = math.ceil(n / self.batch_size)
        self.targets = Targets(net, splits.task)
        self.parts = parts
        self.optimizer, self.schedule, self.best = parts.optimizer, parts.schedule, parts.best
        for layer in net.layers:
            layer.set_rng(streams["dropout"])
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

    def save(self, name: str) -> bool:
        """Write checkpoint ``name``, unless a parameter is not finite: a checkpoint is
        always a state that training (or a rollback) can go on from. True if written."""
        if not np.isfinite(self.net.params).all():
            self.run.log(f"{name} not written: the parameters are not finite")
            return False
        checkpoint.save(  # written at once: the live arrays, not copies of them
            self.run.checkpoints / name,
            self.net.state_dict(copy=False),
            self.optimizer.state_dict(copy=False),
            self.meta(),
            self.perm,
        )
        return True

    def restore(self, path: Path, keep_scale: bool = False) -> None:
        params, opt, meta, perm = checkpoint.load(path)
        self.net.load_state_dict(params)
        self.optimizer.load_state_dict(opt)
        try:
            position = [meta[k] for k in ("epoch", "step", "batch", "rollbacks")]
            if not all(type(v) is int and v >= 0 for v in position):
                raise ValueError(f"epoch, step, batch, rollbacks must be counts, got {position}")
            if position[2] > self.n_batches or position[0] > self.epochs:
                raise ValueError(
                    f"position epoch {position[0]}, batch {position[2]} is past the run"
                )
            sums, scale = meta["sums"], meta["lr_scale"]
            if not isinstance(sums, dict) or not all(
                isinstance(v, int | float) for v in sums.values()
            ):
                raise ValueError("the epoch's sums must be numbers")
            if not isinstance(scale, int | float) or not 0 < scale <= 1:
                raise ValueError(f"lr_scale must be in (0, 1], got {scale!r}")
            for k, g in self.streams.items():
                g.bit_generator.state = meta["rng"][k]
            self.epoch, self.step, self.batch = position[:3]
            if self.steps is not None:
                self.steps.keep_until(self.step)
            self.sums = sums
            self.schedule.load_state_dict(meta["schedule"])
            self.best.load_state_dict(meta["best"])
            if not keep_scale:
                self.lr_scale, self.rollbacks = float(scale), position[3]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has bad metadata: {exc}") from None
        if len(perm) == len(self.perm):
            self.perm = perm

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict[str, Any]:
        start = time.perf_counter()
        if not (self.run.checkpoints / "last.npz").exists():
            self.save("last.npz")  # the first "last good" state, for rollback
            self._record_grad_through_time("initial")
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
        """Ctrl-C: stop after this batch (the loop says so); a second one aborts. Nothing is
        printed here: the signal may arrive in the middle of any import or write."""
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True

    def _loop(self) -> None:
        n = len(self.train_set)
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
                if self.totals:
                    self.sums["train_seconds"] = 0.0
                if self.step_sizes:
                    self.sums.update(update_norm=0.0, effective_lr=0.0, stepped=0.0)
            outcome = NEXT
            while self.batch < self.n_batches:
                tb = time.perf_counter()
                outcome = self._train_batch()
                if outcome != NEXT:
                    break
                if self.totals:
                    if self.timed:
                        self.sums["train_seconds"] += time.perf_counter() - tb
                    self.timed = True
                for callback in self.callbacks:
                    callback(self)
                if self.stop_requested:
                    self.progress.note("Ctrl-C: stopped after this batch; saving a checkpoint")
                    self.sums["seconds"] += time.perf_counter() - t0
                    self.save("last.npz")
                    self.status = "interrupted"
                    self.reason = "stopped by Ctrl-C"
                    return
            if outcome == STOP:
                if self.batch > 0:  # diverged mid-epoch: a row for the batches before it
                    self.sums["seconds"] += time.perf_counter() - t0
                    self._partial_row()
                return
            if outcome == ROLLED_BACK:
                continue  # at the last checkpoint's position, which may be mid-epoch
            self.sums["seconds"] += time.perf_counter() - t0
            outcome = self._end_epoch()
            if outcome == STOP:
                return
            if outcome == ROLLED_BACK:
                continue
            if self.best.should_stop:
                self.reason = (
                    f"early stopping: {self.best.monitor} did not improve for "
                    f"{self.best.patience} epochs"
                )
                self.run.log(self.reason)
                break
        self.status = "completed"

    def _train_batch(self) -> str:
        """One update: NEXT, or STOP (diverged), or ROLLED_BACK (to the last checkpoint)."""
        net, b = self.net, self.batch
        idx = self.perm[b * self.batch_size : (b + 1) * self.batch_size]
        x = self.train_set.take(idx, net.dtype)
        y = self.train_set.y[idx]
        if self.parts.augment is not None and not self.parts.augment.copies:
            x = augment(x, self.streams["augment"], self.parts.augment)
        lr = self.schedule.lr(self.epoch, self.step) * self.lr_scale
        value, out = net.train_step_grads(x, self.targets.encode(y))
        for p in self.parts.penalties:
            value += p.regularizer.penalty(p.weights)
            p.regularizer.add_grad(p.weights, p.grads)
        # one float64 pass over every gradient: NaN or inf anywhere makes the sum non-finite
        squares = net.grad_sum_squares().tolist()  # a few floats: summed in Python
        norms = [math.sqrt(squares[i]) for _, i in self.weight_layers]
        if self.steps is not None:
            self._record_step(value, norms)
        if not (math.isfinite(value) and math.isfinite(sum(squares))):
            return self._diverged(value, x)
        if self.parts.clip is not None:
            apply_clipping(self.parts.clip, [layer.grads[k] for layer, k, _ in net.param_items()])
        if self.step_sizes:
            np.copyto(self._before, net.params)
        self.optimizer.step(net.params, net.grads, lr)
        if self.step_sizes:
            self._measure_step(self._before)
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
        return NEXT

    def _record_step(self, loss: float, norms: list[float]) -> None:
        """steps.csv's row of the update about to be made (``log.every_step``)."""
        row: dict[str, Any] = {"step": self.step + 1, "epoch": self.epoch + 1, "loss": loss}
        for (name, _), v in zip(self.weight_layers, norms):
            row[f"grad_norm/{name}"] = v
        self.steps.add(row)

    def _measure_step(self, before: np.ndarray) -> None:
        """Add this update's ||delta w|| and ||delta w|| / ||g|| to the epoch's sums
        (``before``: the parameters before the update; overwritten). g is the gradient the
        optimizer was given (penalties added, clipped)."""
        np.subtract(self.net.params, before, out=before)
        step = math.sqrt(sum_squares(before))
        grad = math.sqrt(sum_squares(self.net.grads))
        self.sums["update_norm"] += step
        if grad > 0.0:  # a zero gradient has no rate (a perceptron with no mistakes)
            self.sums["effective_lr"] += step / grad
            self.sums["stepped"] += 1.0

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

    def _diverged(self, value: float, x: np.ndarray) -> str:
        where = self._where_nonfinite(x)
        return self._diverge(
            f"loss or gradient became non-finite (loss={value}) at epoch {self.epoch + 1}, "
            f"step {self.step + 1}; first non-finite values in the {where}"
        )

    def _diverge(self, msg: str) -> str:
        """Apply the divergence policy: ROLLED_BACK to the last checkpoint (which is
        always finite) with half the learning rate, or STOP with status diverged."""
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
            return ROLLED_BACK
        self.status, self.reason = "diverged", msg
        return STOP

    def _end_epoch(self) -> str:
        """Metrics of the finished epoch, checkpoints; NEXT, or the divergence policy's
        outcome when the weights or the validation loss are no longer finite."""
        metrics = self._row(evaluated=True)
        problem = self._nonfinite_epoch(metrics)
        if problem and self._diverge(problem) == ROLLED_BACK:
            return ROLLED_BACK
        self.rows = [r for r in self.rows if r["epoch"] <= self.epoch] + [metrics]
        self.run.write_metrics(self.rows)
        if self.steps is not None:
            self.steps.flush()
        self._notify("epoch_end", metrics)
        if problem:  # diverged: the epoch's row shows where; no checkpoint is written
            self.epoch += 1
            self.batch = 0
            self.progress.epoch(metrics)
            return STOP
        self.schedule.observe(self.epoch, metrics)
        improved = self.best.update(self.epoch + 1, metrics)
        self.epoch += 1
        self.batch = 0
        if improved:
            self.save("best.npz")
        if self.epoch % self.cfg["train"]["checkpoint_every"] == 0 or self.epoch == self.epochs:
            self.save("last.npz")
        self.progress.epoch(metrics)
        return NEXT

    def _row(self, evaluated: bool) -> dict[str, Any]:
        """The metrics.csv row of the epoch in progress, from its sums over the batches done
        (all of them at the epoch's end); ``evaluated``: with the end-of-epoch evaluations
        (validation set, and the training set with ``log.train_eval``)."""
        s, batches = self.sums, max(self.batch, 1)
        row: dict[str, Any] = {"epoch": self.epoch + 1, "loss": s["loss"] / max(s["count"], 1)}
        if self.targets.task == "classification":
            row["accuracy"] = s["correct"] / max(s["count"], 1)
        if evaluated and self.train_eval:  # evaluation mode: no random stream is drawn from
            for k, v in evaluate(self.net, self.splits.train, self.targets).items():
                row[f"train_eval_{k}"] = v
        if evaluated and self.splits.val is not None:
            for k, v in evaluate(self.net, self.splits.val, self.targets).items():
                row[f"val_{k}"] = v
        row["lr"] = self.schedule.lr(self.epoch, max(self.step - 1, 0)) * self.lr_scale
        row["seconds"] = s["seconds"]
        if self.totals:
            before = next((r for r in self.rows if r["epoch"] == self.epoch), {})
            row["updates"] = self.step
            row["train_seconds"] = before.get("train_seconds", 0.0) + s.get("train_seconds", 0.0)
        if self.step_sizes:
            row["update_norm"] = s.get("update_norm", 0.0) / batches
            stepped = s.get("stepped", 0.0)
            row["effective_lr"] = s.get("effective_lr", 0.0) / stepped if stepped else math.nan
        for name, _ in self.weight_layers:
            row[f"grad_norm/{name}"] = s[f"grad_norm/{name}"] / batches
        return row

    def _partial_row(self) -> None:
        """The last row of a run that diverged in the middle of an epoch: the means over
        the batches before the one that diverged, no evaluation (the weights are those of
        a run on its way to overflow)."""
        self.rows = [r for r in self.rows if r["epoch"] <= self.epoch] + [self._row(False)]
        self.run.write_metrics(self.rows)
        self._notify("epoch_end", self.rows[-1])

    def _nonfinite_epoch(self, metrics: dict[str, Any]) -> str:
        """Why this epoch's end is divergence ("" if it is not): parameters that are no
        longer finite after the last update, or a non-finite validation loss."""
        epoch = metrics["epoch"]
        if not np.isfinite(self.net.params).all():
            bad = next(
                f"{layer.name}.{key}"
                for layer, key, value in self.net.param_items()
                if not np.isfinite(value).all()
            )
            return f"parameters became non-finite by the end of epoch {epoch} (first: {bad})"
        for key in ("val_loss", "loss"):
            if key in metrics and not math.isfinite(metrics[key]):
                return f"{key} became non-finite at epoch {epoch} ({metrics[key]})"
        return ""

    def _notify(self, event: str, data: dict[str, Any]) -> None:
        """Callbacks are called after every batch; one with an ``epoch_end`` or ``run_end``
        method is also given each epoch's metrics row and, at the end, the run's summary."""
        for callback in self.callbacks:
            hook = getattr(callback, event, None)
            if hook is not None:
                hook(self, data)

    def _record_grad_through_time(self, when: str) -> None:
        record_grad_through_time(
            self.net, self.splits.train, self.targets, self.streams["dropout"], self.run, when
        )

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
            self._record_grad_through_time("final")
        # the training set is not needed any more: freed before the test set is read and
        # matplotlib is imported, so neither adds to the run's peak memory
        self.splits = self.splits.for_figures()
        self.train_set = self.splits.train
        release_freed_memory()
        if self.status in ("completed", "interrupted") and self.splits.test is not None:
            for k, v in evaluate(self.net, self.splits.test, self.targets).items():
                final[f"test_{k}"] = v
            release_pages(self.splits.test.x)  # read once, from the cache's mapped file
        ws = [layer.params[k] for layer, k, _ in self.net.param_items() if k == "W"]
        if ws:  # fraction of near-zero weights: L1 drives weights to exactly zero, L2 does not
            summary["sparsity"] = sparsity(ws)
        summary["final"] = final
        summary["best"] = dict(best_row) if best_row else {}
        summary["rollbacks"] = self.rollbacks
        self.run.write_summary(summary)
        if self.steps is not None:
            self.steps.flush()  # the epoch in progress: a stop, a divergence, Ctrl-C
        self._notify("run_end", summary)
        self.run.log(f"status {self.status}{': ' + self.reason if self.reason else ''}")
        try:
            from dlrun.runs import plots  # matplotlib: imported once the training set is freed

            plots.run_plots(self.run, self.net, self.splits, self.targets, self.parts.augment)
            if self.steps is not None and self.steps.path.is_file():
                from dlrun.runs.steps_plot import steps_figure

                steps_figure(self.steps.path, self.run.plots / "steps.png", self.cfg, self.status)
        except Exception as exc:  # a plot must never lose a run
            self.run.log(f"plots failed: {type(exc).__name__}: {exc}")
        return summary
