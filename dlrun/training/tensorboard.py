"""TensorBoard event files of a run, written while it trains (``log.tensorboard``).

    dlrun train configs/quickstart.yaml --tensorboard     # or log: {tensorboard: true}
    tensorboard --logdir runs                             # every run, sweep cell and trial

The writer is tensorboardX (the ``tensorboard`` extra: ``pip install 'dlrun[tensorboard]'``),
imported only when a run asks for it. What goes where, in ``RUN_DIR/tensorboard/``::

    tensorboard/                 the run (TensorBoard names it <run dir>/tensorboard)
        every metrics.csv column, tag = column name, step = epoch (1, 2, ...): loss,
          accuracy, val_loss, val_accuracy, lr, seconds, grad_norm/<layer> (the mean over
          the epoch's batches of ||dC/dW||, the same numbers as metrics.csv), ...
        test_loss, test_accuracy when the run has ended (step = its last epoch)
        weights/<layer>.<param>, gradients/<layer>.<param>: histograms every
          ``log.histograms`` epochs (the weights after the epoch's last update, the
          gradient of its last batch)
        grad_through_time/<layer>/first_step, /last_step (recurrent layers): ||dC/dS_t||
          at t = 1 and t = T in the epoch's last batch; vanishing gradients make first_step
          fall far below last_step
        config (text, step 0): the resolved config.yaml
        HParams: the run's hyper-parameters (the key settings below, its --set overrides,
          a sweep cell's values, a tune trial's parameters); its metrics are the scalars
    tensorboard/batches/         batch/loss: the training loss (mean per sample) of the
                                 last ``log.batch_every`` batches, step = updates so far
    tensorboard/grad_through_time/initial, /final     recurrent layers: ||dC/dS_t||
                                 against the time step t (step = t), before and after
                                 training (grad_through_time.json)

Why steps differ between folders: epochs put runs with different batch sizes on one axis
(a sweep compares them), updates show progress inside an epoch. Each folder is one
TensorBoard run with one kind of step, so that a resume can tell TensorBoard which steps
to drop: a resumed run writes a ``SessionLog.START`` event at the step after its
checkpoint (epoch + 1, update + 1), and TensorBoard's readers discard the events of the
stopped process from that step on (``EventAccumulator`` on the START event, the fast
data server by dropping a tag's later steps when a step comes again). No step keeps two
values; the epochs up to the checkpoint that a killed process had not flushed yet are
written again from metrics.csv. A divergence rollback inside one process is handled the
same way (a START event at the first step that is run again).

Logging never ends a run: an error here is written to log.txt and logging stops.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun.config.loading import parse_path
from dlrun.errors import ConfigError

if TYPE_CHECKING:
    from dlrun.training.trainer import Trainer

#: Settings every run shows in the HParams dashboard besides its overrides.
KEY_SETTINGS = ("optimizer.name", "optimizer.lr", "train.batch_size", "seed")
#: Seconds between the writer thread's flushes (how live the curves are).
FLUSH_SECS = 2
#: Buckets of a histogram (equal widths between the tensor's min and max, as np.histogram).
BINS = 64
EVENTS = "events.out.tfevents.*"
INSTALL = "pip install 'dlrun[tensorboard]'  (or: pip install tensorboardX tensorboard)"


def require_writer() -> Any:
    """tensorboardX's ``SummaryWriter``; a ConfigError saying how to install it if missing.

    tensorboardX imports PyTorch when it is installed, only to accept torch tensors (here
    4 s and 200 MB more per process), for a writer that is given NumPy arrays. Unless torch
    is loaded already, tensorboardX is imported with torch hidden, and torch stays
    importable afterwards.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # import torch: ImportError
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ConfigError(
            "log.tensorboard (--tensorboard) needs the tensorboardX package, which is not "
            "installed",
            hint=INSTALL,
        ) from None
    finally:
        if hide:
            del sys.modules["torch"]
    # a diverged epoch's NaN is a value to show (metrics.csv has it too), not a warning
    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
    return SummaryWriter


def hyperparameters(
    cfg: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), given: dict | None = None
) -> dict[str, bool | int | float | str]:
    """What the HParams dashboard shows for a run: ``KEY_SETTINGS``, then every overridden
    key (``--set k=v``: the value the resolved config holds there; ``log.*`` keys are
    not hyper-parameters), then ``given`` (a sweep cell's values, a trial's parameters).
    Values other than bool, number and string are shown as JSON text."""
    found: dict[str, Any] = {key: _lookup(cfg, key) for key in KEY_SETTINGS}
    for item in overrides:
        key, _, text = item.partition("=")
        key = key.strip()
        if key == "log" or key.startswith("log."):
            continue
        value = _lookup(cfg, key)
        found[key] = text if value is None else value
    found.update(given or {})
    return {k: _hparam(v) for k, v in found.items() if v is not None}


def _lookup(cfg: dict[str, Any], key: str) -> Any:
    """The value at a dotted key path (``model.layers[1].units``), or None."""
    node: Any = cfg
    try:
        for token in parse_path(key):
            node = node[token]
    except (KeyError, IndexError, TypeError, ConfigError):
        return None
    return node


def _hparam(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


class TensorBoardLogger:
    """A trainer callback that writes the run's TensorBoard events (see the module).

    Made after the trainer has restored a checkpoint (``dlrun.training.train``): it opens
    its writers at the trainer's position. Called after every batch; ``epoch_end`` and
    ``run_end`` are called by the trainer with the epoch's metrics row and the summary.
    """

    def __init__(self, trainer: Trainer, hparams: dict[str, Any]) -> None:
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        self._event, self._log = Event, SessionLog
        self.run = trainer.run
        self.root = trainer.run.path / "tensorboard"
        log = trainer.cfg.get("log") or {}
        self.histograms = int(log.get("histograms", 0))
        self.batch_every = int(log.get("batch_every", 0))
        self.failed = False
        self.main = self.batches = None
        self.epoch_seen = trainer.epoch  # the last epoch whose row is written
        self.step_seen = trainer.step  # the last update seen by the batch callback
        self.window = [0.0, 0.0]  # loss sum and sample count since the last batch/loss
        self.base = (trainer.sums.get("loss", 0.0), trainer.sums.get("count", 0.0))
        self.initial_written = False
        self._guard(self._open, trainer, hparams)

    # ------------------------------------------------------------------ writers
    def _writer(self, folder: Path, purge_step: int | None = None) -> Any:
        """A SummaryWriter on a new event file in ``folder``. File names sort in the
        order they were made (TensorBoard reads them in name order), also within one
        second: a sequence number follows the time stamp and host name."""
        writer_class = require_writer()
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob(EVENTS)))
        return writer_class(
            str(folder),
            purge_step=purge_step,
            flush_secs=FLUSH_SECS,
            filename_suffix=f".{n:04d}",
        )

    def _open(self, trainer: Trainer, hparams: dict[str, Any]) -> None:
        resumed = any(self.root.glob(EVENTS))
        epoch, step = trainer.epoch, trainer.step
        if not resumed:
            self.main = self._writer(self.root)
            self._write_config(trainer.cfg)
            self._write_hparams(hparams)
        else:
            logged = _logged_epochs(self.root)
            self.main = self._writer(self.root, purge_step=epoch + 1)
            if logged is not None:  # the epochs the stopped process wrote but never flushed
                last = max((e for e in logged if e <= epoch), default=0)
                for row in trainer.rows:
                    if int(row["epoch"]) > last:
                        self._scalars(row)
        # the batches' writer is made at the first batch/loss (a short run may have none)
        again = any((self.root / "batches").glob(EVENTS))
        self.batches_purge = step + 1 if again else None

    def _guard(self, fn: Any, *args: Any) -> None:
        """Run ``fn``; an error stops the logging (said in log.txt), never the run."""
        if self.failed:
            return
        try:
            fn(*args)
        except Exception as exc:
            self.failed = True
            self.run.log(f"tensorboard logging stopped: {type(exc).__name__}: {exc}")
            self._close()

    def _purge(self, writer: Any, step: int) -> None:
        """Tell TensorBoard that this run continues from ``step``: events at that step and
        later that were written before are dropped."""
        start = self._log(status=self._log.START)
        writer.file_writer.add_event(self._event(step=step, session_log=start))

    # ------------------------------------------------------------------ run start
    def _write_config(self, cfg: dict[str, Any]) -> None:
        import yaml

        text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
        # Markdown: an indented block keeps the YAML's layout
        self.main.add_text("config", "\n".join("    " + line for line in text.splitlines()), 0)

    def _write_hparams(self, hparams: dict[str, Any]) -> None:
        """The HParams plugin's start record: the hyper-parameters of this run. Its
        metrics are the run's scalars (TensorBoard reads their last values)."""
        from tensorboardX.summary import hparams as hparams_summaries

        _, start, _ = hparams_summaries(hparams, {})
        self.main.file_writer.add_summary(start, 0)

    def _write_run_end(self, status: str) -> None:
        from tensorboardX.proto.api_pb2 import Status
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

        code = Status.Value("STATUS_SUCCESS" if status == "completed" else "STATUS_FAILURE")
        content = HParamsPluginData(
            session_end_info=SessionEndInfo(status=code, end_time_secs=time.time()), version=0
        )
        meta = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name="hparams", content=content.SerializeToString()
            )
        )
        tag = "_hparams_/session_end_info"
        self.main.file_writer.add_summary(
            Summary(value=[Summary.Value(tag=tag, metadata=meta)]), self.epoch_seen
        )

    # ------------------------------------------------------------------ batches
    def __call__(self, trainer: Trainer) -> None:
        if self.batch_every and not self.failed:
            self._guard(self._batch, trainer)

    def _batch(self, trainer: Trainer) -> None:
        """Accumulate this batch's loss (the growth of the epoch's sums); every
        ``batch_every`` updates, write their mean."""
        sums, step = trainer.sums, trainer.step
        if step <= self.step_seen:  # rolled back to a checkpoint: these steps run again
            if self.batches is not None:
                self._purge(self.batches, step)
            self.window = [0.0, 0.0]
            if trainer.batch != 1:  # restored inside an epoch: its sums before this batch
                self.base = (sums["loss"], sums["count"])  # are not known here; skipped
                self.step_seen = step
                return
        if trainer.batch == 1:  # the epoch's sums started again from zero
            self.base = (0.0, 0.0)
        self.window[0] += sums["loss"] - self.base[0]
        self.window[1] += sums["count"] - self.base[1]
        self.base = (sums["loss"], sums["count"])
        self.step_seen = step
        if step % self.batch_every == 0 and self.window[1] > 0:
            if self.batches is None:
                self.batches = self._writer(self.root / "batches", self.batches_purge)
            self.batches.add_scalar("batch/loss", self.window[0] / self.window[1], step)
            self.window = [0.0, 0.0]

    # ------------------------------------------------------------------ epochs
    def epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self._guard(self._epoch_end, trainer, row)

    def _epoch_end(self, trainer: Trainer, row: dict[str, Any]) -> None:
        epoch = int(row["epoch"])
        if epoch <= self.epoch_seen:  # rolled back past a written epoch
            self._purge(self.main, epoch)
        self._scalars(row)
        net = trainer.net
        for layer in net.layers:
            norms = getattr(layer, "state_grad_norms", None)
            if norms is not None and len(norms):
                self.main.add_scalar(f"grad_through_time/{layer.name}/first_step", norms[0], epoch)
                self.main.add_scalar(f"grad_through_time/{layer.name}/last_step", norms[-1], epoch)
        if self.histograms and epoch % self.histograms == 0:
            for layer, key, value in net.param_items():
                name = f"{layer.name}.{key}"
                self._histogram(f"weights/{name}", value, epoch)
                self._histogram(f"gradients/{name}", layer.grads[key], epoch)
        self.epoch_seen = epoch
        if not self.initial_written:
            self._grad_through_time("initial")
            self.initial_written = True

    def _histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """``BINS`` equal buckets from the tensor's min to its max (as ``np.histogram``),
        counted by a kernel; a tensor that is not finite (a diverged epoch) is skipped."""
        from dlrun.kernels.histogram import bucket_counts, moments

        flat = values.reshape(-1)
        lo, hi, total, squares = moments(flat)
        if not (math.isfinite(total) and math.isfinite(squares)):
            return
        edges = (
            np.linspace(lo, hi, BINS + 1) if hi > lo else np.linspace(lo - 0.5, hi + 0.5, BINS + 1)
        )
        counts = np.empty(BINS, dtype=np.int64)
        bucket_counts(flat, edges, counts)
        # TensorBoard keeps each bucket's right edge: an empty bucket first holds the left one
        self.main.add_histogram_raw(
            tag, lo, hi, flat.size, total, squares, edges.tolist(), [0, *counts.tolist()], step
        )

    def _scalars(self, row: dict[str, Any]) -> None:
        epoch = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float):
                self.main.add_scalar(key, float(value), epoch)

    def _grad_through_time(self, when: str) -> None:
        """||dC/dS_t|| against t from grad_through_time.json, once per ``when`` (a run
        made again from its seed has the same values: an existing folder is kept)."""
        record = self.run.read_json("grad_through_time.json").get(when) or {}
        folder = self.root / "grad_through_time" / when
        if not record or any(folder.glob(EVENTS)):
            return
        writer = self._writer(folder)
        try:
            for layer, norms in record.items():
                for t, value in enumerate(norms, start=1):
                    writer.add_scalar(f"grad_through_time/{layer}", value, t)
        finally:
            writer.close()

    # ------------------------------------------------------------------ end
    def run_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        self._guard(self._run_end, trainer, summary)
        self._close()

    def _run_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        status = summary.get("status")
        if status == "interrupted":  # it goes on after --resume
            return
        final = summary.get("final") or {}
        for key, value in final.items():
            if key.startswith("test_") and isinstance(value, int | float):
                self.main.add_scalar(key, float(value), self.epoch_seen)
        self._write_run_end(str(status))
        if status == "completed":
            self._grad_through_time("final")

    def _close(self) -> None:
        for writer in (self.main, self.batches):
            if writer is not None:
                try:
                    writer.close()
                except Exception:  # already failing: the first error is in log.txt
                    pass
        self.main = self.batches = None


def _logged_epochs(folder: Path) -> set[int] | None:
    """The epochs whose ``loss`` scalar a TensorBoard reader keeps from the event files
    in ``folder`` (a START event drops the steps from its own on), or None when
    TensorBoard's reader is not installed."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
        from tensorboard.compat.proto.event_pb2 import SessionLog
    except ImportError:
        return None
    steps: set[int] = set()
    for path in sorted(folder.glob(EVENTS)):
        for event in EventFileLoader(str(path)).Load():
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                steps = {s for s in steps if s < event.step}
            elif event.HasField("summary") and any(v.tag == "loss" for v in event.summary.value):
                steps.add(int(event.step))
    return steps
