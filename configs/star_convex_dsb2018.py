"""Star-convex nucleus model on dsb2018: the watershed model's U-Net (widths 12-192, depth 4, from scratch) with a
head of one object probability + 32 ray distances per pixel, polygons kept by NMS (Schmidt et al. 2018).

The data recipe is the watershed model's (``configs/watershed_unet_dsb2018.py``): native resolution, random
256 px crops, scale jitter 0.7-1.4, flips, 90-degree rotations, brightness/contrast jitter, 0..255 -> 0..1
intensities without a per-image stretch. Train with:

    instseg train --config configs/star_convex_dsb2018.py --data DSB2018_DIR --out runs/star_convex
"""

from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig

config = Config(
    name="star_convex_dsb2018",
    model=ModelConfig(
        name="star_convex_unet",
        kwargs={
            "base_channels": 12,
            "depth": 4,
            "n_rays": 32,
            "per_image_normalization": False,
            "min_size": None,
            "max_size": None,
            "min_area": 20,
            "prob_threshold": 0.5,
            "nms_threshold": 0.4,
        },
    ),
    data=DataConfig(
        crop=256,
        scale_range=(0.7, 1.4),
        hflip=True,
        vflip=True,
        rot90=True,
        color_jitter=0.4,
        batch_size=8,
        val_batch_size=1,
        num_workers=0,
    ),
    train=TrainConfig(
        optimizer="adamw",
        lr=3e-3,
        weight_decay=1e-4,
        max_iters=1200,
        warmup_iters=100,
        warmup_factor=0.01,
        schedule="cosine",
        min_lr_factor=0.02,
        clip_grad_norm=5.0,
        ema_decay=None,
        eval_period=0,
        checkpoint_period=100,
        log_period=10,
        seed=0,
        best_metric="match/F1@0.5",
        best_mode="max",
    ),
    eval=EvalConfig(max_dets=1000, score_thr=0.5),
)
