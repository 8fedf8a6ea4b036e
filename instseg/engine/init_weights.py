"""Start training from another checkpoint's weights (fine-tuning), matched tensor by tensor.

Detectron2's ``MODEL.WEIGHTS`` and Ultralytics' ``model=best.pt`` do the same: the architecture comes from the
config, the starting values from a file. A tensor is copied when the file has one of the same name and shape;
the rest keep their freshly built values, which is what a fine-tune onto another class count needs (the class
logits change shape, everything else fits). ``torch.nn.Module.load_state_dict(strict=False)`` skips missing
names but raises on a shape mismatch, hence the per-tensor filter here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

DEFAULT_NAME = "default"  # ``train.init_weights="default"``: the shipped default model


@dataclass
class InitReport:
    """What ``initialize_from`` did: tensor names copied, and those of the model it left as built."""

    source: str
    loaded: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the training log."""
        line = (
            f"initialised {len(self.loaded)} of {len(self.loaded) + len(self.shape_mismatch) + len(self.not_in_file)}"
        )
        line += f" tensors from {self.source}"
        for label, names in (("other shape", self.shape_mismatch), ("not in the file", self.not_in_file)):
            if names:
                shown = ", ".join(names[:4]) + (f", ... ({len(names)})" if len(names) > 4 else "")
                line += f"; kept as built ({label}): {shown}"
        return line


def resolve_init_path(init: str) -> Path:
    """The file ``train.init_weights`` names (``"default"``: the shipped model)."""
    from instseg.engine.checkpoint import default_weights_path

    return default_weights_path() if init == DEFAULT_NAME else Path(init).expanduser()


def initialize_from(model: nn.Module, init: str, use_ema: bool = True) -> InitReport:
    """Copy into ``model`` every tensor of checkpoint ``init`` with the same name and shape (EMA weights when the
    file has them); ``ValueError`` naming the file when it cannot be read or not one tensor fits."""
    from instseg.engine.checkpoint import load_checkpoint  # weights_only=True: the file runs no code

    path = resolve_init_path(init)
    state = load_checkpoint(path)
    weights = state["ema"]["state"] if use_ema and state.get("ema") else state["model"]
    if not isinstance(weights, dict):
        raise ValueError(f"checkpoint {path}: its 'model' entry is not a state dict")
    report = InitReport(str(path))
    own = model.state_dict()
    fitting = {}
    for name, tensor in own.items():
        given = weights.get(name)
        if given is None:
            report.not_in_file.append(name)
        elif tuple(given.shape) != tuple(tensor.shape):
            report.shape_mismatch.append(name)
        else:
            fitting[name] = given
            report.loaded.append(name)
    if not any(own[name].is_floating_point() for name in fitting):
        raise ValueError(f"checkpoint {path}: none of its weights fits this model (names or shapes differ)")
    model.load_state_dict(fitting, strict=False)
    return report
