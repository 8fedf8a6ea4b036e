"""Watershed on a small U-Net, trained from scratch on dsb2018 nuclei (CPU-sized): the shipped default model until
SpatialEmbeddings on the same U-Net replaced it (``spatial_embedding_dsb2018{,_stage2}.py``).

Native resolution (no resize; nuclei are 20-120 px across), random 256 px crops cut before masks are decoded,
scale jitter 0.7-1.4, flips, 90-degree rotations and brightness/contrast jitter. Intensities are scaled
0..255 -> 0..1 (no per-image stretch) so that tiles of a large image and empty images behave like whole ones;
16-bit inputs are brought to 8 bits by the reader's percentile rule first. Train with:

    instseg train --config configs/watershed_unet_dsb2018.py --data DSB2018_DIR --out runs/watershed
"""

from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig

config = Config(
    name="watershed_unet_dsb2018",
    model=ModelConfig(
        name="watershed_unet",
        kwargs={
            "base_channels": 12,
            "depth": 4,
            "per_image_normalization": False,
            "min_size": None,
            "max_size": None,
            "min_area": 20,
            "fg_threshold": 0.4,
            "seed_threshold": 0.7,
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
        eval_period=400,
        checkpoint_period=250,
        log_period=10,
        seed=0,
        best_metric="match/F1@0.5",
        best_mode="max",
    ),
    eval=EvalConfig(max_dets=1000, score_thr=0.5),
)
