"""The CLI's one error boundary: every command's faults end as one ``error: ...`` line and an exit code.

Exit codes: 0 success, 1 bad data (a file's contents, a failed run), 2 bad usage (an argument out of range, a
missing input path, a device that is not there), 130 interrupted. No traceback is shown unless the developer
switch is on (``instseg --debug ...`` or the environment variable ``INSTSEG_DEBUG=1``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
import typer

DEBUG_ENV = "INSTSEG_DEBUG"
F = TypeVar("F", bound=Callable[..., Any])

_debug = False


class UsageFault(ValueError):
    """A command-line argument that cannot be used (exit code 2); the message names the argument."""


def set_debug(enabled: bool) -> None:
    """Turn the developer switch on or off (``--debug``): faults then propagate with their traceback."""
    global _debug
    _debug = enabled


def debug_enabled() -> bool:
    """Whether tracebacks are wanted (``--debug`` or ``INSTSEG_DEBUG`` set to a true value)."""
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (``raise fail(...) from err``)."""
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(code=code)


def one_line(message: str) -> str:
    """A message folded onto one line (multi-line library messages joined with '; ')."""
    parts = [part.strip() for part in str(message).splitlines() if part.strip()]
    return "; ".join(parts) if parts else "(no message)"


def exit_code_of(err: BaseException) -> int:
    """2 for usage faults (bad argument, missing input path), 1 for everything else."""
    if isinstance(err, UsageFault | FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return 2
    return 1


def describe(err: BaseException) -> str:
    """The user-facing text of a fault: our own errors as they are; others with their type, since a bare
    library message (``KeyError: 3``) says little without it."""
    if isinstance(err, FileNotFoundError) and err.filename is not None:
        return f"{err.filename}: no such file or folder"
    if isinstance(err, UsageFault | ValueError | TypeError) and str(err):
        return str(err)
    if isinstance(err, MemoryError):
        return "out of memory (try a smaller --tile, batch or image)"
    if isinstance(err, OSError) and str(err):
        return str(err)
    text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return f"{text} (unexpected; rerun with --debug or {DEBUG_ENV}=1 for the traceback and report it)"


def guarded(command: F) -> F:
    """``command`` wrapped so that any exception becomes ``error: ...`` + exit code (see the module docstring)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException, click.ClickException, click.Abort):
            raise  # Typer's own exits and usage errors (typer.BadParameter, ...) are printed by Typer
        except BrokenPipeError:
            raise  # output piped into `head` and closed: Typer exits quietly
        except Exception as err:
            if debug_enabled():
                raise
            raise fail(describe(err), code=exit_code_of(err)) from err

    return run  # type: ignore[return-value]
