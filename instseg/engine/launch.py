"""From a ``Config`` to a running ``Trainer``: resolve data paths, build data sets, the model and the evaluator."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from instseg.engine.config import Config


def _split_for(data: Path, split: str | None) -> str | None:
    """A json path takes no split (``resolve_annotations`` refuses one); a folder takes the configured split."""
    return None if data.is_file() else split


def resolve_data(cfg: Config) -> Config:
    """A copy of ``cfg`` with absolute data paths, and ``data.val`` set to the training folder when that folder
    has the ``val_split`` annotation file and no other validation data was named."""
    from instseg.data.paths import available_splits

    cfg = copy.deepcopy(cfg)
    d = cfg.data
    if d.train is None:
        raise ValueError("no training data: give --data DIR_OR_JSON (or set data.train in the config)")
    for name in ("train", "images", "val", "val_images"):
        value = getattr(d, name)
        if value is not None:
            setattr(d, name, str(Path(value).expanduser().resolve()))
    train = Path(d.train)  # type: ignore[arg-type]
    if d.val is None and d.val_split is not None and train.is_dir() and d.val_split in available_splits(train):
        d.val = str(train)
    return cfg


def build_datasets(cfg: Config) -> tuple[Any, Any]:
    """``(train data set, val CocoDataset or None)``, both without transforms: the training augmentation needs the
    model's resize rule (``set_train_transforms``); validation images stay at their own size because evaluation
    resizes them by the model's rule, as prediction does (``instseg.engine.evaluate.evaluate_model``)."""
    from instseg.data.coco import CocoDataset
    from instseg.data.paths import resolve_annotations

    d = cfg.data
    train_path = Path(d.train)  # type: ignore[arg-type]
    ann, images = resolve_annotations(train_path, _split_for(train_path, d.train_split), d.images)
    train_set: Any = CocoDataset(ann, images, skip_invalid=d.skip_invalid)
    if d.crop is not None:
        from instseg.data.crop_sampling import RandomCropDataset

        train_set = RandomCropDataset(train_set, int(d.crop), d.scale_range)
    val_set = None
    if d.val is not None:
        val_path = Path(d.val)
        val_ann, val_images = resolve_annotations(val_path, _split_for(val_path, d.val_split), d.val_images)
        val_set = CocoDataset(val_ann, val_images, skip_invalid=d.skip_invalid)
        if val_set.category_ids != train_set.category_ids:
            raise ValueError(
                f"{val_set.ann_file}: categories {val_set.category_ids} differ from the training data's "
                f"{train_set.category_ids} ({train_set.ann_file})"
            )
    return train_set, val_set


def set_train_transforms(train_set: Any, cfg: Config, min_size: int | None, max_size: int | None) -> None:
    """Give ``train_set`` the configured augmentation around the model's resize rule (``min_size``/``max_size``;
    ``data.train_min_sizes`` replaces the short side when set; random crops and ``lsj`` replace the resize)."""
    from instseg.data.crop_sampling import RandomCropDataset
    from instseg.transforms import build_train_transforms

    d = cfg.data
    cropping = isinstance(train_set, RandomCropDataset)
    train_tf = build_train_transforms(
        min_size=None if cropping else (list(d.train_min_sizes) if d.train_min_sizes else min_size),
        max_size=None if cropping else max_size,
        hflip=d.hflip,
        vflip=d.vflip,
        rot90=d.rot90,
        lsj=None if cropping else d.lsj,
        scale_range=d.scale_range,
        color_jitter=d.color_jitter,
    )
    train_set.transforms = train_tf if cropping else [train_tf]


def appearance_sampling(train_set: Any, cfg: Config) -> list[int] | None:
    """Per-image repeat counts for ``data.repeat_by_appearance`` (None when it is empty), with a one-line summary
    of what is repeated printed by the main process."""
    factors = cfg.data.repeat_by_appearance
    if not factors:
        return None
    from instseg.data.appearance import APPEARANCES, appearance_repeats
    from instseg.engine.distributed import is_main_process

    repeats, counts = appearance_repeats(train_set, factors)
    if is_main_process():
        shown = ", ".join(f"{kind} {counts[kind]} x{factors.get(kind, 1)}" for kind in APPEARANCES if counts[kind])
        print(f"repeating training images by appearance: {shown} -> {sum(repeats)} per epoch", flush=True)
    return repeats


def with_num_classes(cfg: Config, num_classes: int, source: str) -> Config:
    """A copy of ``cfg`` whose ``model.kwargs["num_classes"]`` is the data's class count (an explicit, different
    value raises ``ValueError``)."""
    given = cfg.model.kwargs.get("num_classes")
    if given is not None and int(given) != num_classes:
        raise ValueError(f"{source}: model.kwargs.num_classes={given} but the data set has {num_classes} categories")
    cfg = copy.deepcopy(cfg)
    cfg.model.kwargs["num_classes"] = num_classes
    return cfg


def train_from_config(
    cfg: Config,
    out_dir: str | Path,
    device: str = "cpu",
    resume: bool = False,
    stop_at: int | None = None,
    trust_module: bool = True,
) -> dict[str, float]:
    """Train as ``cfg`` says into ``out_dir`` (joining ``torchrun``'s process group if launched by it) and return
    the last evaluation figures. ``trust_module=False`` (a config read back from a checkpoint, not the caller's
    own) imports ``model.module`` only under ``import_model_module``'s rules."""
    from instseg.engine.checkpoint import build_model
    from instseg.engine.distributed import init_distributed
    from instseg.engine.rng import seed_everything
    from instseg.engine.trainer import Trainer
    from instseg.methods.segmenter import InstanceSegmenter

    torch_device = init_distributed(device)
    cfg = resolve_data(cfg)
    train_set, val_set = build_datasets(cfg)
    cfg = with_num_classes(cfg, train_set.num_classes, str(train_set.ann_file))
    seed_everything(cfg.train.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    model = build_model(cfg, [cfg.model.module] if trust_module and cfg.model.module else [])
    if not isinstance(model, InstanceSegmenter):
        raise TypeError(f"model {cfg.model.name!r} is not an InstanceSegmenter")
    if cfg.train.init_weights and not resume:
        from instseg.engine.distributed import is_main_process
        from instseg.engine.init_weights import initialize_from

        report = initialize_from(model, cfg.train.init_weights)
        if is_main_process():
            print(report.summary(), flush=True)
    set_train_transforms(train_set, cfg, model.min_size, model.max_size)
    repeats = appearance_sampling(train_set, cfg)
    trainer = Trainer(
        cfg,
        model,
        train_set,  # type: ignore[arg-type]
        out_dir,
        torch_device,
        val_set=val_set,
        sample_repeats=repeats,
    )
    return trainer.train(resume=resume, stop_at=stop_at)
