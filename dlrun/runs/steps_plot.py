"""plots/steps.png: every update of a run (``log.every_step``, read from steps.csv).

Two panels over the update number: the batch's loss, and ||dC/dW|| of each weight layer
(before clipping; colour from the input's layer to the output's). A run that diverged is
drawn up to the step where its loss or gradient stopped being finite, marked by a red
line: the steps before it show how the gradient grew.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.runs.figure import log_y, plt, save
from dlrun.runs.steps import read_steps

#: Gradient norms below this (exact zeros included) are drawn at it: a log axis has no 0.
FLOOR = 1e-12


def steps_figure(
    csv_path: Path, png_path: Path, cfg: dict[str, Any] | None = None, status: str = ""
) -> Path:
    """Write ``png_path`` from the steps.csv at ``csv_path``; ``cfg``: the run's config (for
    the title), ``status``: the run's (a diverged run's last step is marked)."""
    columns, rows = read_steps(csv_path)
    keys = [k for k in columns if k.startswith("grad_norm/")]
    steps = np.array([r["step"] for r in rows], dtype=float)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.6), sharex=True)
    fig.subplots_adjust(left=0.11, right=0.86 if len(keys) > 8 else 0.97, top=0.9, bottom=0.09)
    name = (cfg or {}).get("name") or "run"
    fig.suptitle(
        f"{name}: every update ({len(rows)} steps{', ' + status if status else ''})", fontsize=10
    )
    loss = np.array([r["loss"] for r in rows], dtype=float)
    finite = np.isfinite(loss)
    top.plot(steps[finite], loss[finite], lw=0.8, color="tab:blue")
    top.set_ylabel("batch loss C")
    if finite.any() and np.nanmin(loss[finite]) > 0:
        log_y(top)
    top.grid(alpha=0.3)
    floored = False
    for i, key in enumerate(keys):
        v = np.array([r[key] for r in rows], dtype=float)
        ok = np.isfinite(v)
        floored |= bool((v[ok] < FLOOR).any())
        bottom.plot(
            steps[ok],
            np.maximum(v[ok], FLOOR),
            lw=0.9,
            color=plt.cm.viridis(i / max(len(keys) - 1, 1)),
            label=f"{i + 1}: {key[len('grad_norm/') :]}" if len(keys) <= 8 else None,
        )
    bottom.set_xlabel("update (step)")
    bottom.set_ylabel("||dC/dW|| per layer (before clipping)")
    if keys:
        log_y(bottom)
    bottom.grid(alpha=0.3)
    if floored:
        bottom.text(
            0.01, 0.02, f"0 and values < {FLOOR:g} drawn at {FLOOR:g}",
            transform=bottom.transAxes, fontsize=7, color="0.35",
        )  # fmt: skip
    if len(keys) > 8:  # too many layers for a legend: a colour scale names them
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        cax = fig.add_axes((0.88, 0.09, 0.02, 0.36))
        scale = ScalarMappable(Normalize(1, len(keys)), plt.cm.viridis)
        fig.colorbar(scale, cax=cax, label="layer (1 = nearest the input)")
    elif keys:
        bottom.legend(fontsize=7, title="layer (1 = input side)", title_fontsize=7)
    if status == "diverged" and rows:
        last = steps[-1]
        for ax in (top, bottom):
            ax.axvline(last, color="tab:red", ls="--", lw=1)
        top.annotate(
            f"diverged at step {int(last)}", (last, 1), xycoords=("data", "axes fraction"),
            xytext=(-4, -12), textcoords="offset points", ha="right", color="tab:red",
            fontsize=8,
        )  # fmt: skip
    return save(fig, png_path, tight=False)
