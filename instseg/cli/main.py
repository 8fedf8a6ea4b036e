"""``instseg`` entry point: registers each sub-command from its own module (heavy imports stay inside them)."""

from __future__ import annotations

import typer

from instseg.cli import convert, eval, info, models, predict, train, viz

app = typer.Typer(
    name="instseg",
    help="Instance segmentation: train, evaluate, predict, convert and inspect data sets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for name, command in [
    ("train", train.train),
    ("eval", eval.eval_command),
    ("predict", predict.predict),
    ("models", models.models),
    ("info", info.info),
    ("convert", convert.convert),
    ("viz", viz.viz),
]:
    app.command(name, help=command.__doc__)(command)


if __name__ == "__main__":
    app()
