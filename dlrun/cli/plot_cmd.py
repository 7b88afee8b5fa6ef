"""dlrun plot activations | optimizers | conv | pooling: the course's pictures (other
``dlrun plot`` commands join ``plot_app`` from their own modules)."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors

plot_app = typer.Typer(
    help="Draw figures: the course's pictures, several runs on one scale.", no_args_is_help=True
)
app.add_typer(plot_app, name="plot")


@plot_app.command("activations")
def activations(
    out: Path = typer.Option(Path("activations.png"), "--out", "-o", help="PNG file to write."),
) -> None:
    """Every activation function and its derivative, softsign over tanh, softmax, in one PNG."""
    from dlrun.runs import pictures

    with handle_errors():
        console.print(f"wrote {pictures.activations(out)}")


@plot_app.command("optimizers")
def optimizers(
    out: Path = typer.Option(Path("optimizers.png"), "--out", "-o", help="PNG file to write."),
    surface: str = typer.Option(
        "all", "--surface", "-s", help="valley, saddle, local, or all (one row each)."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Steps of each path (default: the surface's own)."
    ),
) -> None:
    """The nine optimizers' paths on 2-D surfaces, with dlrun's own update kernels."""
    from dlrun.runs import optimizer_paths

    with handle_errors():
        console.print(f"wrote {optimizer_paths.optimizers(out, surface, steps)}")


@plot_app.command("conv")
def conv(
    out: Path = typer.Option(Path("conv.png"), "--out", "-o", help="PNG file to write."),
) -> None:
    """The course's 5x5 image * 3x3 filter, by dlrun's conv2d: printed and drawn."""
    from dlrun.runs import conv_pictures

    with handle_errors():
        console.print(conv_pictures.conv_report())
        console.print(f"wrote {conv_pictures.conv(out)}")


@plot_app.command("pooling")
def pooling(
    out: Path = typer.Option(Path("pooling.png"), "--out", "-o", help="PNG file to write."),
) -> None:
    """Max and average pooling (2x2, stride 2) of one feature map: printed and drawn."""
    from dlrun.runs import conv_pictures

    with handle_errors():
        console.print(conv_pictures.pooling_report())
        console.print(f"wrote {conv_pictures.pooling(out)}")
