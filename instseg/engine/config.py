"""Typed training configuration: what a config file builds, ``--set`` overrides and every checkpoint stores.

A config file is plain Python that defines ``config = Config(...)`` (see ``configs/``); one level of inheritance
at most: load a base with ``load_config`` and ``dataclasses.replace`` it. Nothing here enters an ``nn.Module``:
the model gets its own keyword arguments from ``ModelConfig.kwargs`` through its registered builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from instseg.data.appearance import check_repeat_factors

Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["cosine", "step"]
Amp = Literal["bf16", "fp16"]
Mode = Literal["max", "min"]


@dataclass
class ModelConfig:
    """Which registered model to build and its builder's keyword arguments.

    ``module`` is an optional Python module imported before ``create_model`` so that a model registered outside
    the package (a user's project, or the tests' tiny model) can be trained, launched with ``torchrun`` and
    reloaded from its checkpoint. ``kwargs["num_classes"]`` is filled in from the training data when absent.
    """

    name: str = "mask_rcnn_resnet18_fpn"
    kwargs: dict[str, Any] = field(default_factory=dict)
    module: str | None = None


@dataclass
class DataConfig:
    """Where the data is, how training images are augmented, and how they are batched.

    ``train``/``val`` are a data folder (``DIR/annotations/instances_{split}.json`` + ``DIR/images``) or a COCO
    json path (images in the sibling ``../images`` unless ``images``/``val_images`` is given). Image sizes are the
    model's (``model.kwargs`` ``min_size``/``max_size``: one rule for training, evaluation, prediction and
    export); ``train_min_sizes`` replaces the model's short side in training by one drawn per image (multi-scale
    training). The augmentation knobs are those of
    ``instseg.transforms.build_train_transforms``: flips, 90-degree rotations (microscopy), large-scale jitter to
    an ``lsj`` square (replaces the short-side resize when set) and colour jitter strength.
    ``repeat_by_appearance`` oversamples rare kinds of microscopy image: ``{"color": 3}`` puts every colour image
    three times into each training epoch (keys ``gray_dark``, ``gray_bright``, ``color``:
    ``instseg.data.appearance``).
    """

    train: str | None = None
    train_split: str | None = "train"
    images: str | None = None
    val: str | None = None
    val_split: str | None = "val"
    val_images: str | None = None
    train_min_sizes: tuple[int, ...] = ()
    hflip: bool = True
    vflip: bool = False
    rot90: bool = False
    lsj: int | None = None
    crop: int | None = None
    scale_range: tuple[float, float] = (0.1, 2.0)
    color_jitter: float = 0.0
    skip_invalid: bool = False
    repeat_by_appearance: dict[str, int] = field(default_factory=dict)
    batch_size: int = 2
    val_batch_size: int = 2
    num_workers: int = 0


@dataclass
class TrainConfig:
    """Optimiser, learning-rate schedule, precision, and when to log, evaluate and save.

    ``max_iters`` counts optimiser steps; each consumes ``accumulate`` micro-batches of ``data.batch_size`` per
    process. The learning rate warms up linearly from ``lr * warmup_factor`` over ``warmup_iters`` steps, then
    follows a cosine down to ``lr * min_lr_factor`` or is multiplied by ``gamma`` at each of ``steps``.
    ``ema_decay`` keeps an exponential moving average of the weights (evaluated and exported instead of the raw
    weights) when set. ``amp`` applies on CUDA only; ``channels_last`` (NHWC weights and batches) on every device:
    on CPU it moves convolutions onto oneDNN's NHWC kernels (the light YOLACT trains 1.2x faster per step at one
    thread; losses agree to about 1e-4, not bit for bit: ``benchmarks/train_throughput.py``). Periods of 0 disable
    the action (``last.pt`` and a final evaluation still happen at the end). ``init_weights`` (a checkpoint file, or
    ``"default"`` for the shipped model) starts the run from its weights instead of the builder's: fine-tuning;
    tensors of another shape (e.g. class logits for another class count) keep their built values
    (``instseg.engine.init_weights``). A resumed run ignores it: ``last.pt`` holds every weight.
    """

    optimizer: Optimizer = "sgd"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    max_iters: int = 1000
    warmup_iters: int = 100
    warmup_factor: float = 0.001
    schedule: Schedule = "cosine"
    min_lr_factor: float = 0.0
    steps: tuple[int, ...] = ()
    gamma: float = 0.1
    clip_grad_norm: float | None = None
    accumulate: int = 1
    ema_decay: float | None = None
    amp: Amp | None = None
    channels_last: bool = False
    find_unused_parameters: bool = False
    eval_period: int = 500
    checkpoint_period: int = 500
    log_period: int = 20
    seed: int = 0
    best_metric: str = "segm/AP"
    best_mode: Mode = "max"
    init_weights: str | None = None


@dataclass
class EvalConfig:
    """Evaluation settings: detections kept per image (COCO AP) and the score threshold of the matching metrics."""

    max_dets: int = 100
    score_thr: float = 0.5


@dataclass
class Config:
    """A whole training recipe: model, data, optimisation and evaluation; ``name`` labels runs and logs."""

    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def validate_config(cfg: Config, source: str = "config") -> None:
    """Raise ``ValueError`` naming ``source`` and the field for values that cannot work (before any compute)."""
    t, d = cfg.train, cfg.data
    checks: list[tuple[bool, str]] = [
        (t.optimizer in ("sgd", "adamw"), f"train.optimizer must be 'sgd' or 'adamw', got {t.optimizer!r}"),
        (t.schedule in ("cosine", "step"), f"train.schedule must be 'cosine' or 'step', got {t.schedule!r}"),
        (t.amp in (None, "bf16", "fp16"), f"train.amp must be bf16, fp16 or None, got {t.amp!r}"),
        (t.best_mode in ("max", "min"), f"train.best_mode must be 'max' or 'min', got {t.best_mode!r}"),
        (t.lr > 0, f"train.lr must be > 0, got {t.lr}"),
        (t.max_iters >= 1, f"train.max_iters must be >= 1, got {t.max_iters}"),
        (t.warmup_iters >= 0, f"train.warmup_iters must be >= 0, got {t.warmup_iters}"),
        (0 < t.warmup_factor <= 1, f"train.warmup_factor must be in (0, 1], got {t.warmup_factor}"),
        (0 <= t.min_lr_factor <= 1, f"train.min_lr_factor must be in [0, 1], got {t.min_lr_factor}"),
        (list(t.steps) == sorted(t.steps), f"train.steps must be increasing, got {t.steps}"),
        (t.accumulate >= 1, f"train.accumulate must be >= 1, got {t.accumulate}"),
        (t.ema_decay is None or 0 < t.ema_decay < 1, f"train.ema_decay must be in (0, 1), got {t.ema_decay}"),
        (t.clip_grad_norm is None or t.clip_grad_norm > 0, f"train.clip_grad_norm must be > 0, got {t.clip_grad_norm}"),
        (min(t.eval_period, t.checkpoint_period) >= 0, "train.eval_period and train.checkpoint_period must be >= 0"),
        (t.log_period >= 1, f"train.log_period must be >= 1, got {t.log_period}"),
        (t.init_weights is None or bool(t.init_weights), "train.init_weights must be a checkpoint path or None"),
        (d.batch_size >= 1 and d.val_batch_size >= 1, "data.batch_size and data.val_batch_size must be >= 1"),
        (d.num_workers >= 0, f"data.num_workers must be >= 0, got {d.num_workers}"),
        (all(s >= 1 for s in d.train_min_sizes), f"data.train_min_sizes must be positive, got {d.train_min_sizes}"),
        (d.lsj is None or d.lsj >= 32, f"data.lsj must be None or >= 32, got {d.lsj}"),
        (d.crop is None or d.crop >= 16, f"data.crop must be None or >= 16, got {d.crop}"),
        (d.color_jitter >= 0, f"data.color_jitter must be >= 0, got {d.color_jitter}"),
        (cfg.eval.max_dets >= 1, f"eval.max_dets must be >= 1, got {cfg.eval.max_dets}"),
        (bool(cfg.model.name), "model.name must not be empty"),
    ]
    faults = [message for ok, message in checks if not ok]
    try:
        check_repeat_factors(d.repeat_by_appearance)
    except ValueError as fault:
        faults.append(str(fault))
    if faults:
        raise ValueError(f"{source}: " + "; ".join(faults))
