"""How a command stops on a user error: the message on stderr, then a ``typer.Exit`` with the command's code."""

from __future__ import annotations

import typer


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (``raise fail(...) from err``)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)
