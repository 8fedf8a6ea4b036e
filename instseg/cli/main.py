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

app.command("train", help=train.train.__doc__)(train.train)
app.command("eval", help=eval.eval_command.__doc__)(eval.eval_command)
app.command("predict", help=predict.predict.__doc__)(predict.predict)
app.command("models", help=models.models.__doc__)(models.models)
app.command("info", help=info.info.__doc__)(info.info)
app.command("convert", help=convert.convert.__doc__)(convert.convert)
app.command("viz", help=viz.viz.__doc__)(viz.viz)

if __name__ == "__main__":
    app()
