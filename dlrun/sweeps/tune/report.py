"""What a user sees of a study: one line per finished trial, the table of the best trials,
and trials.csv (one row per trial).

    [3/20] trial 2  lr=0.0123  val_loss 0.4321  completed, 12 epochs, 1.1 s  | best 0.4012 (trial 1), 1 pruned
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from dlrun.sweeps.spec import short
from dlrun.sweeps.tune.space import Param


def names(space: list[Param]) -> dict[str, str]:
    """A short column name per key (``optimizer.lr`` -> ``lr``), the key where two clash."""
    shorts = [short(p.key) for p in space]
    return {p.key: s if shorts.count(s) == 1 else p.key for p, s in zip(space, shorts)}


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def outcome(trial: Any) -> str:
    """completed | diverged | pruned | failed | surplus (a trial that was not needed)."""
    state = trial.state.name
    if state == "COMPLETE":
        run = trial.user_attrs.get("run") or {}
        return "diverged" if run.get("status") == "diverged" else "completed"
    if state == "PRUNED":
        return "pruned"
    if state == "FAIL" and trial.user_attrs.get("surplus"):
        return "surplus"
    return state.lower() if state != "FAIL" else "failed"


def best_value(trials: list[Any], direction: str) -> Any:
    """The best COMPLETE trial with a finite value (None if there is none)."""
    done = [
        t
        for t in trials
        if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)
    ]
    if not done:
        return None
    pick = min if direction == "minimize" else max
    return pick(done, key=lambda t: (t.value, -t.number) if pick is max else (t.value, t.number))


def trial_row(trial: Any, space: list[Param]) -> dict[str, Any]:
    """One trials.csv row."""
    run = trial.user_attrs.get("run") or {}
    row: dict[str, Any] = {"trial": trial.number, "state": outcome(trial), "value": trial.value}
    for p in space:
        row[p.key] = trial.params.get(p.key)
    row["epochs"] = run.get("epochs")
    row["seconds"] = run.get("seconds")
    row["run_dir"] = run.get("dir") or trial.user_attrs.get("run_dir") or ""
    row["reason"] = trial.user_attrs.get("error", "")
    worker = trial.user_attrs.get("worker") or {}
    row["worker"] = f"{worker.get('host')}:{worker.get('pid')}" if worker else ""
    return row


class TrialLog:
    """Prints a line for each trial that finished since the last look at the study."""

    def __init__(
        self,
        total: int,
        metric: str,
        direction: str,
        space: list[Param],
        mode: str = "plain",
        console: Console | None = None,
    ) -> None:
        self.total, self.metric, self.direction, self.space = total, metric, direction, space
        self.mode = mode
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.seen: set[int] = set()
        self.names = names(space)

    def note(self, text: str) -> None:
        if self.mode != "silent":
            self.console.print(text, markup=False)

    def start(self, study: Any) -> None:
        """Remember the trials already finished (a resumed study) and say how many."""
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
        self.seen = {t.number for t in done}
        if done:
            finished = sum(t.state.name in ("COMPLETE", "PRUNED") for t in done)
            pruned = sum(t.state.name == "PRUNED" for t in done)
            failed = sum(outcome(t) == "failed" for t in done)
            self.note(
                f"continuing study: {finished} of {self.total} trials finished before "
                f"({pruned} pruned), {failed} failed or stopped (their budget is spent again)"
            )

    def poll(self, study: Any) -> None:
        trials = study.get_trials(deepcopy=False)
        new = [
            t
            for t in trials
            if t.number not in self.seen and t.state.name in ("COMPLETE", "PRUNED", "FAIL")
        ]
        new.sort(key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
        for t in new:
            self.seen.add(t.number)
            if outcome(t) != "surplus":
                self.note(self.line(t, [x for x in trials if x.number in self.seen]))

    def line(self, trial: Any, known: list[Any]) -> str:
        finished = sum(t.state.name in ("COMPLETE", "PRUNED") for t in known)
        pruned = sum(t.state.name == "PRUNED" for t in known)
        params = "  ".join(f"{self.names[k]}={fmt(v)}" for k, v in trial.params.items())
        run = trial.user_attrs.get("run") or {}
        state = outcome(trial)
        if state == "failed":
            why = trial.user_attrs.get("error") or "its process stopped (killed or Ctrl-C)"
            what = f"failed: {why}; its budget is spent again"
            head = f"[{finished}/{self.total}]"
        else:
            shown = fmt(trial.value) if trial.value is not None else "-"
            epochs = run.get("epochs")
            seconds = run.get("seconds")
            detail = ", ".join(
                x
                for x in (
                    state if state != "pruned" else f"pruned at epoch {epochs}",
                    f"{epochs} epochs" if epochs is not None and state != "pruned" else "",
                    f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "",
                )
                if x
            )
            what = f"{self.metric} {shown}  {detail}"
            head = f"[{finished}/{self.total}]"
        best = best_value(known, self.direction)
        tail = f"best {fmt(best.value)} (trial {best.number})" if best else "best -"
        return f"{head} trial {trial.number}  {params}  {what}  | {tail}, {pruned} pruned"


def best_table(
    study: Any, space: list[Param], metric: str, direction: str, top: int = 5, title: str = ""
) -> Table:
    """The ``top`` best completed trials: rank, trial, metric, parameters, epochs, run."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE" and t.value is not None
    ]
    trials.sort(key=lambda t: (t.value if direction == "minimize" else -t.value, t.number))
    tab = Table(title=title or None, title_justify="left", header_style="bold")
    cols = names(space)
    for head, just in (("rank", "right"), ("trial", "right"), (metric, "right")):
        tab.add_column(head, justify=just)
    for p in space:
        tab.add_column(cols[p.key], justify="right" if p.kind != "choice" else "left")
    tab.add_column("epochs", justify="right")
    tab.add_column("seconds", justify="right")
    tab.add_column("run")
    for rank, t in enumerate(trials[:top], start=1):
        run = t.user_attrs.get("run") or {}
        seconds = run.get("seconds")
        tab.add_row(
            str(rank),
            str(t.number),
            fmt(t.value) if math.isfinite(t.value) else f"{t.value} (diverged)",
            *[fmt(t.params.get(p.key)) for p in space],
            str(run.get("epochs", "")),
            f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "",
            str(run.get("dir", "")),
        )
    return tab
