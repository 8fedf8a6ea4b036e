"""``instseg train``: train a model from a config file on a COCO data set (one process or ``torchrun``)."""

from __future__ import annotations

from pathlib import Path

import typer

from instseg.cli.arguments import check_device
from instseg.cli.errors import UsageFault, fail


def train(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Python config file defining `config = Config(...)` (optional with --resume)."
    ),
    data: str | None = typer.Option(None, "--data", help="Training data: folder (with --split) or COCO json."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoints, metrics.csv, config.yaml, curves."),
    val_data: str | None = typer.Option(
        None, "--val-data", help="Validation data (default: --data's --val-split when that folder has it)."
    ),
    split: str | None = typer.Option(None, "--split", help="Training split of a data folder (config: train)."),
    val_split: str | None = typer.Option(None, "--val-split", help="Validation split (config: val)."),
    images: Path | None = typer.Option(None, "--images", help="Images folder of --data (default: beside it)."),
    val_images: Path | None = typer.Option(None, "--val-images", help="Images folder of --val-data."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config field, e.g. --set train.lr=0.01 (repeatable)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    init: str | None = typer.Option(
        None, "--init", help="Start from this checkpoint's weights ('default': the shipped model): fine-tuning."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (each torchrun process takes its LOCAL_RANK GPU)."),
) -> None:
    """Train a model from a config file; distributed with `torchrun --nproc_per_node=N -m instseg train ...`."""
    from instseg.engine.checkpoint import checkpoint_config, load_checkpoint
    from instseg.engine.config_io import load_config
    from instseg.engine.distributed import cleanup_distributed, is_main_process
    from instseg.engine.launch import train_from_config
    from instseg.engine.overrides import apply_overrides
    from instseg.engine.trainer import NonFiniteLossError

    try:
        if out.exists() and not out.is_dir():
            raise UsageFault(f"--out {out}: is an existing file; name a run folder")
        if config is not None:
            cfg = load_config(config)
        elif resume:
            cfg = checkpoint_config(load_checkpoint(out / "last.pt"), str(out / "last.pt"))
        else:
            raise UsageFault("give --config FILE (or --resume to continue the run in --out with its own config)")
        cli_data = {
            "train": data,
            "val": val_data,
            "train_split": split,
            "val_split": val_split,
            "images": str(images) if images is not None else None,
            "val_images": str(val_images) if val_images is not None else None,
        }
        for key, value in cli_data.items():
            if value is not None:
                setattr(cfg.data, key, value)
        cfg = apply_overrides(cfg, overrides)
        if init is not None:
            cfg.train.init_weights = init
        check_device(device)
        # A config file is code the user chose to run, so its model.module is theirs; one read back from a
        # checkpoint is a file's say-so and imports only what import_model_module allows.
        metrics = train_from_config(cfg, out, device=device, resume=resume, trust_module=config is not None)
        main = is_main_process()
    except NonFiniteLossError as err:
        raise fail(str(err)) from err
    except (ValueError, TypeError) as err:  # config, overrides, data locations and run folder: all usage (2)
        raise fail(str(err), code=2) from err
    finally:
        cleanup_distributed()
    if main:
        shown = ", ".join(f"{k}={metrics[k]:.4f}" for k in ("segm/AP", "segm/AP50", "bbox/AP") if k in metrics)
        typer.echo(f"done: {out}" + (f" ({shown})" if shown else ""))
