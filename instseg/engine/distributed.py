"""``torch.distributed`` set-up from ``torchrun``'s environment and the few collective helpers the engine uses.

``torchrun --nproc_per_node=N -m instseg train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT``; without them everything here degrades to a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    """Whether the process was started by ``torchrun`` (or another launcher setting ``WORLD_SIZE``/``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init_distributed(device: str = "cpu") -> torch.device:
    """Join the process group when launched by ``torchrun`` (gloo on CPU, NCCL on CUDA); return this process's device.

    On CUDA each process takes ``cuda:LOCAL_RANK``. Calling it twice, or outside ``torchrun``, is harmless.
    """
    requested = torch.device(device)
    if requested.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return requested
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if requested.type == "cuda":
        requested = torch.device("cuda", local_rank)
        torch.cuda.set_device(requested)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if requested.type == "cuda" else "gloo")
    return requested


def cleanup_distributed() -> None:
    """Leave the process group (end of training) so that the launcher sees a clean exit."""
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True when a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0: the one process that logs, draws progress and writes checkpoints."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def any_true(flag: bool, device: torch.device | str = "cpu") -> bool:
    """Whether ``flag`` holds on any rank (so that all ranks stop together, e.g. on a non-finite loss)."""
    if not is_distributed():
        return flag
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (e.g. the best metric decided on rank 0)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
