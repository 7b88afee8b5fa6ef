"""What a run prints while it trains.

``rich``: a live bar per epoch with loss, accuracy and ETA (on a terminal).
``plain``: one line per epoch (not a terminal, or ``--quiet``).
``silent``: nothing (library use, tests).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported when something is printed (2-3 MiB in a silent run)
    from rich.console import Console
    from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, mode: str = "plain", name: str = "", console: Console | None = None) -> None:
        if mode == "rich" and not sys.stdout.isatty():
            mode = "plain"
        self.mode, self.name = mode, name
        self._console = console
        self.bar: RichProgress | None = None
        self.task: Any = None
        self.epochs = 0

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=True)
        return self._console

    def start(self, epochs: int, batches: int, epoch: int, batch: int) -> None:
        self.epochs, self.batches = epochs, batches
        if self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(
                "train",
                total=epochs * batches,
                completed=epoch * batches + batch,
                epoch=epoch + 1,
                epochs=epochs,
                stats="",
            )

    def batch(self, loss: float, sums: dict[str, float]) -> None:
        if self.bar is not None:
            count = max(sums["count"], 1)
            stats = f"loss {sums['loss'] / count:.4f}"
            if sums.get("correct"):
                stats += f" acc {sums['correct'] / count:.3f}"
            self.bar.update(self.task, advance=1, stats=stats)

    def epoch(self, metrics: dict[str, Any]) -> None:
        if self.mode == "silent":
            return
        line = self.format(metrics)
        if self.bar is not None:
            self.bar.update(self.task, epoch=min(metrics["epoch"] + 1, self.epochs))
            self.bar.console.print(line)
        else:
            self.console.print(line)

    def format(self, metrics: dict[str, Any]) -> str:
        parts = [f"epoch {int(metrics['epoch'])}/{self.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
            if key in metrics:
                value = metrics[key]
                parts.append(f"{key} {value:.4g}" if key != "seconds" else duration(value))
        return "  ".join(parts)

    def note(self, text: str) -> None:
        if self.mode != "silent":
            (self.bar.console if self.bar is not None else self.console).print(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def duration(seconds: float) -> str:
    """An epoch's time: milliseconds below 0.1 s (a small network's epoch would read 0.00s)."""
    return f"{seconds * 1e3:.1f}ms" if seconds < 0.1 else f"{seconds:.2f}s"
