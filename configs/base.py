"""Base recipe: Mask R-CNN ResNet-18-FPN trained from scratch with SGD, warmup + cosine schedule.

Other configs load this file and ``dataclasses.replace`` what they change (one level of inheritance at most):

    base = load_config(Path(__file__).with_name("base.py"))
    config = dataclasses.replace(base, train=dataclasses.replace(base.train, max_iters=2000))

GroupNorm in the backbone and the FPN because batches of two images are too small for BatchNorm statistics when
no pretrained weights are loaded (Wu & He, "Group Normalization", 2018).
"""

from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig

MIN_SIZE = 512
MAX_SIZE = 1024

config = Config(
    name="base",
    model=ModelConfig(
        name="mask_rcnn_resnet18_fpn",
        # the model owns the resize rule: training, evaluation, prediction and export all use it
        kwargs={"min_size": MIN_SIZE, "max_size": MAX_SIZE, "norm": "gn", "fpn_norm": "gn"},
    ),
    data=DataConfig(hflip=True, batch_size=2, val_batch_size=2, num_workers=2),
    train=TrainConfig(
        optimizer="sgd",
        lr=0.02,
        momentum=0.9,
        weight_decay=1e-4,
        max_iters=5000,
        warmup_iters=200,
        warmup_factor=0.001,
        schedule="cosine",
        clip_grad_norm=10.0,
        ema_decay=None,
        eval_period=1000,
        checkpoint_period=500,
        log_period=20,
        seed=0,
        best_metric="segm/AP",
        best_mode="max",
    ),
    eval=EvalConfig(max_dets=100, score_thr=0.5),
)
