"""Small synthetic COCO data and configs of the tiny model, shared by the engine and train-CLI tests."""

from __future__ import annotations

from pathlib import Path

from instseg.data.synthetic import SyntheticShapes
from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig

ENGINE_TESTS_DIR = Path(__file__).resolve().parent


def write_synthetic(root: Path, num_train: int = 10, num_val: int = 4, size: int = 48) -> Path:
    """``root/images`` + ``root/annotations/instances_{train,val}.json`` of one-class synthetic shapes."""
    common = {"image_size": size, "num_classes": 1, "min_objects": 1, "max_objects": 4, "size_range": (0.12, 0.3)}
    SyntheticShapes(num_images=num_train, seed=1, split="train", **common).write_coco(root)
    SyntheticShapes(num_images=num_val, seed=2, split="val", **common).write_coco(root)
    return root


def tiny_config(data: Path | None = None, **train: object) -> Config:
    """The tiny model with every engine feature on: EMA, accumulation, clipping, augmentation, periodic eval."""
    settings: dict[str, object] = {
        "lr": 0.05,
        "max_iters": 8,
        "warmup_iters": 2,
        "eval_period": 4,
        "checkpoint_period": 4,
        "log_period": 2,
        "ema_decay": 0.9,
        "clip_grad_norm": 5.0,
        "accumulate": 2,
        "seed": 3,
    }
    settings.update(train)
    return Config(
        name="tiny",
        model=ModelConfig("tiny_fg_test", {"hidden": 4, "max_size": 64}, module="tiny_fg_model"),
        data=DataConfig(
            train=str(data) if data is not None else None,
            train_min_sizes=(40, 48, 56),
            hflip=True,
            rot90=True,
            color_jitter=0.2,
            batch_size=1,
            val_batch_size=2,
            num_workers=0,
        ),
        train=TrainConfig(**settings),  # type: ignore[arg-type]
        eval=EvalConfig(max_dets=100, score_thr=0.5),
    )
