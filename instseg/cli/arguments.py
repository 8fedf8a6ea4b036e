"""Checks of command-line arguments shared by several commands, made before any work starts (exit code 2)."""

from __future__ import annotations

from instseg.cli.errors import UsageFault


def check_device(device: str, allow_auto: bool = False) -> str:
    """``device`` if it names a device this machine has (``cpu``, ``cuda``, ``cuda:N``, ``mps``), else UsageFault."""
    import torch

    if allow_auto and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise UsageFault(f"--device {device!r}: not a device name (use cpu, cuda or cuda:N)") from err
    if parsed.type == "cpu":
        return device
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageFault(f"--device {device!r}: no CUDA GPU is available on this machine (use --device cpu)")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise UsageFault(f"--device {device!r}: this machine has {count} CUDA GPU(s), numbered 0..{count - 1}")
        return device
    if parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageFault(f"--device {device!r}: MPS is not available on this machine (use --device cpu)")
        return device
    raise UsageFault(f"--device {device!r}: unsupported device type {parsed.type!r} (use cpu or cuda)")
