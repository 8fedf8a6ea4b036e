"""``instseg models``: list the registered models."""

from __future__ import annotations

import typer


def models(pattern: str | None = typer.Argument(None, help="Only names containing this text.")) -> None:
    """List the registered model names (what --config files and create_model accept)."""
    from instseg.registry import list_models

    for name in list_models(pattern):
        typer.echo(name)
