"""``instseg`` entry point: registers each sub-command from its own module (heavy imports stay inside them).

Every command registered on ``app`` runs inside the one error boundary of ``instseg.cli.errors``; help and usage
errors are printed as plain text (``rich_markup_mode=None``), so user text in them is never read as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from instseg.cli import convert, eval, export, info, models, predict, serve, train, viz
from instseg.cli.errors import guarded, set_debug


class GuardedTyper(typer.Typer):
    """A Typer app whose every command is wrapped by ``guarded`` whatever order they are registered in."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:  # type: ignore[override]
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            register(guarded(function))
            return function

        return decorator


app = GuardedTyper(
    name="instseg",
    help="Instance segmentation: train, evaluate, predict, convert and inspect data sets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def main(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of a fault (also: environment INSTSEG_DEBUG=1)."
    ),
) -> None:
    """Instance segmentation: train, evaluate, predict, convert and inspect data sets."""
    set_debug(debug)


app.command("train", help=train.train.__doc__)(train.train)
app.command("eval", help=eval.eval_command.__doc__)(eval.eval_command)
app.command("predict", help=predict.predict.__doc__)(predict.predict)
app.command("export", help=export.export.__doc__)(export.export)
app.command("models", help=models.models.__doc__)(models.models)
app.command("info", help=info.info.__doc__)(info.info)
app.command("convert", help=convert.convert.__doc__)(convert.convert)
app.command("viz", help=viz.viz.__doc__)(viz.viz)
app.command("serve", help=serve.serve.__doc__)(serve.serve)

if __name__ == "__main__":
    app()
