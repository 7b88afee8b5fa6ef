"""The study's figures, drawn with Optuna's matplotlib visualisations into ``plots/``:

    optimization_history.png   each trial's value and the best so far
    slice.png                  value against each parameter (parameter vs metric)
    param_importances.png      fANOVA importances (more than one parameter)
    intermediate_values.png    each trial's metric by epoch (where pruned trials stop)

A figure that cannot be drawn (too few trials, a visualisation's error) is left
out with a warning: figures never lose a study.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _save(draw: Callable[[], Any], path: Path, metric: str, width: float = 6.4) -> Path | None:
    """Draw one figure, name the metric where Optuna says "Objective Value", save it."""
    import matplotlib.pyplot as plt
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            axes = np.asarray(draw()).ravel()
            for ax in axes:
                if ax.get_ylabel() in ("Objective Value", "Intermediate Value"):
                    ax.set_ylabel(metric)
                if ax.get_xlabel() == "Step":
                    ax.set_xlabel("epoch")
            fig = axes[0].get_figure()
            fig.set_size_inches(width, 4.8)
            fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return path
    except Exception as exc:  # a figure must never lose the study
        warnings.warn(f"{path.name} not drawn: {type(exc).__name__}: {exc}", stacklevel=2)
        plt.close("all")
        return None


def study_plots(study: Any, n_params: int, out_dir: Path, metric: str = "") -> list[Path]:
    """Draw the figures of ``study`` into ``out_dir``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as vis

    complete = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    name = metric or "value"
    wanted: list[tuple[str, Callable[[], Any], float]] = [
        (
            "optimization_history.png",
            lambda: vis.plot_optimization_history(study, target_name=name),
            7.5,
        ),
        ("slice.png", lambda: vis.plot_slice(study, target_name=name), 1.5 + 4.0 * n_params),
    ]
    if n_params > 1 and len(complete) >= 2:
        wanted.append(("param_importances.png", lambda: vis.plot_param_importances(study), 6.4))
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        wanted.append(("intermediate_values.png", lambda: vis.plot_intermediate_values(study), 7.5))
    written = [_save(draw, out_dir / file, name, width) for file, draw, width in wanted]
    return [p for p in written if p is not None]
