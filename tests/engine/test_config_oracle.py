"""Config validation, value coercion and ``--set`` parsing against tables of hand-chosen cases: each check at
its boundary (the last good value and the first bad one), each field type with the values it must accept and
refuse, and the legacy size keys."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pytest

from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig, validate_config
from instseg.engine.config_io import coerce_value, config_from_dict, config_to_dict
from instseg.engine.overrides import apply_overrides, parse_override

# (section, field, last good value(s), first bad value(s), words of the message)
BOUNDARIES: list[tuple[str, str, list[Any], list[Any], str]] = [
    ("train", "lr", [1e-9], [0.0, -1.0], "train.lr must be > 0"),
    ("train", "max_iters", [1], [0], "train.max_iters must be >= 1"),
    ("train", "warmup_iters", [0], [-1], "train.warmup_iters must be >= 0"),
    ("train", "warmup_factor", [1.0, 1e-6], [0.0, 1.001], "train.warmup_factor must be in (0, 1]"),
    ("train", "min_lr_factor", [0.0, 1.0], [-0.01, 1.01], "train.min_lr_factor must be in [0, 1]"),
    ("train", "steps", [(), (3, 3), (1, 5)], [(5, 1)], "train.steps must be increasing"),
    ("train", "accumulate", [1], [0], "train.accumulate must be >= 1"),
    ("train", "ema_decay", [None, 0.5], [0.0, 1.0], "train.ema_decay must be in (0, 1)"),
    ("train", "clip_grad_norm", [None, 1e-6], [0.0], "train.clip_grad_norm must be > 0"),
    ("train", "eval_period", [0], [-1], "train.eval_period and train.checkpoint_period must be >= 0"),
    ("train", "checkpoint_period", [0], [-1], "train.eval_period and train.checkpoint_period must be >= 0"),
    ("train", "log_period", [1], [0], "train.log_period must be >= 1"),
    ("train", "optimizer", ["sgd", "adamw"], ["adam"], "train.optimizer must be 'sgd' or 'adamw'"),
    ("train", "schedule", ["cosine", "step"], ["linear"], "train.schedule must be 'cosine' or 'step'"),
    ("train", "amp", [None, "bf16", "fp16"], ["fp32"], "train.amp must be bf16, fp16 or None"),
    ("train", "best_mode", ["max", "min"], ["mean"], "train.best_mode must be 'max' or 'min'"),
    ("data", "batch_size", [1], [0], "data.batch_size and data.val_batch_size must be >= 1"),
    ("data", "val_batch_size", [1], [0], "data.batch_size and data.val_batch_size must be >= 1"),
    ("data", "num_workers", [0], [-1], "data.num_workers must be >= 0"),
    ("data", "train_min_sizes", [(), (1, 800)], [(0,), (640, -1)], "data.train_min_sizes must be positive"),
    ("data", "lsj", [None, 32], [31], "data.lsj must be None or >= 32"),
    ("data", "crop", [None, 16], [15], "data.crop must be None or >= 16"),
    ("data", "color_jitter", [0.0], [-0.1], "data.color_jitter must be >= 0"),
    ("eval", "max_dets", [1], [0], "eval.max_dets must be >= 1"),
    ("model", "name", ["m"], [""], "model.name must not be empty"),
]


def _with(section: str, name: str, value: Any) -> Config:
    cfg = Config()
    setattr(getattr(cfg, section), name, value)
    return cfg


@pytest.mark.parametrize(
    ("section", "name", "good", "bad", "message"), BOUNDARIES, ids=[f"{s}.{n}" for s, n, *_ in BOUNDARIES]
)
def test_each_check_at_its_boundary(section: str, name: str, good: list[Any], bad: list[Any], message: str) -> None:
    for value in good:
        validate_config(_with(section, name, value), "recipe.py")
    for value in bad:
        with pytest.raises(ValueError) as err:
            validate_config(_with(section, name, value), "recipe.py")
        assert str(err.value).startswith("recipe.py: ") and message in str(err.value), (value, str(err.value))


def test_all_faults_are_listed_together() -> None:
    cfg = Config(train=TrainConfig(lr=0.0, max_iters=0), data=DataConfig(num_workers=-1))
    with pytest.raises(ValueError) as err:
        validate_config(cfg, "src")
    assert str(err.value) == (
        "src: train.lr must be > 0, got 0.0; train.max_iters must be >= 1, got 0; data.num_workers must be >= 0, got -1"
    )


RAISES = object()  # the expected result of a value that must be refused

# (value, field type, expected result or RAISES)
COERCIONS: list[tuple[Any, Any, Any]] = [
    (1, float, 1.0), (2.5, float, 2.5), ("1e-3", float, 1e-3), ("-2", float, -2.0),
    (True, float, RAISES), ("fast", float, RAISES), ([1.0], float, RAISES), (None, float, RAISES),
    (3, int, 3), (3.0, int, 3), ("1_000", int, 1000), ("-4", int, -4),
    (3.5, int, RAISES), (False, int, RAISES), ("3.5", int, RAISES), ("x", int, RAISES),
    (True, bool, True), ("yes", bool, True), ("On", bool, True), ("1", bool, True),
    ("false", bool, False), ("no", bool, False), ("off", bool, False), ("0", bool, False),
    (1, bool, RAISES), ("maybe", bool, RAISES),
    ("text", str, "text"), (5, str, RAISES),
    (None, int | None, None), ("none", int | None, None), ("NULL", int | None, None), ("~", int | None, None),
    ("7", int | None, 7), (7, float | None, 7.0), ("none", str | None, None), ("word", str | None, "word"),
    ("none", int, RAISES), ("x", int | None, RAISES),
    ([1, 2], tuple[int, ...], (1, 2)), (5, tuple[int, ...], (5,)), ((), tuple[int, ...], ()),
    ([1, 2], tuple[float, float], (1.0, 2.0)), ([1], tuple[float, float], RAISES), ([1, "a"], tuple[int, ...], RAISES),
    ("sgd", Literal["sgd", "adamw"], "sgd"), ("adam", Literal["sgd", "adamw"], RAISES),
    ({"a": 1}, dict[str, Any], {"a": 1}), ([1], dict[str, Any], RAISES),
    ([1, "x"], Any, [1, "x"]),
]  # fmt: skip


@pytest.mark.parametrize(("value", "hint", "expected"), COERCIONS, ids=[f"{v!r}-{h}" for v, h, _ in COERCIONS])
def test_coercion_table(value: Any, hint: Any, expected: Any) -> None:
    if expected is RAISES:
        with pytest.raises(ValueError, match=r"^cfg\.py: train\.x "):
            coerce_value(value, hint, "train.x", "cfg.py")
        return
    got = coerce_value(value, hint, "train.x", "cfg.py")
    assert got == expected and type(got) is type(expected)
    if isinstance(value, dict):
        assert got is not value  # a copy: later edits of the source do not reach the config


def test_legacy_data_sizes_move_to_the_model_and_the_model_wins() -> None:
    data = config_to_dict(Config(model=ModelConfig("m", {"max_size": 900})))
    data["data"]["min_size"], data["data"]["max_size"] = 512, 1024
    cfg = config_from_dict(data, "old.pt")
    assert cfg.model.kwargs == {"min_size": 512, "max_size": 900}
    assert "min_size" not in dataclasses.asdict(cfg.data)
    plain = config_to_dict(Config())
    assert config_from_dict(plain) == Config()


def test_round_trip_of_every_field_changed() -> None:
    cfg = Config(
        name="n", model=ModelConfig("m", {"k": [1, 2]}, module="pkg.mod"),
        data=DataConfig(train="a", images="b", val="c", train_min_sizes=(1, 2), hflip=False, lsj=64, crop=32,
                        scale_range=(0.5, 1.5), color_jitter=0.3, skip_invalid=True, batch_size=3, num_workers=1),
        train=TrainConfig(optimizer="adamw", lr=0.1, betas=(0.5, 0.6), steps=(3, 4), clip_grad_norm=2.0,
                          ema_decay=0.99, amp="bf16", best_mode="min", accumulate=3),
        eval=EvalConfig(max_dets=7, score_thr=0.25),
    )  # fmt: skip
    back = config_from_dict(config_to_dict(cfg))
    assert back == cfg and config_to_dict(back)["data"]["scale_range"] == [0.5, 1.5]


def test_override_parsing_and_mapping_entries() -> None:
    assert parse_override("  train.lr = 0.1 ") == ("train.lr", "0.1")
    assert parse_override("name=") == ("name", "")
    for text in ("=1", "train.lr", " =x"):
        with pytest.raises(ValueError, match="expects KEY=VALUE"):
            parse_override(text)
    cfg = apply_overrides(
        Config(model=ModelConfig("m", {"a": 5})),
        ["name=", "train.best_metric=segm/AP50", "model.kwargs.b.c=x y", "model.kwargs.d=[1, 2]", "data.train=a=b"],
    )
    assert cfg.name == "" and cfg.train.best_metric == "segm/AP50" and cfg.data.train == "a=b"
    assert cfg.model.kwargs == {"a": 5, "b": {"c": "x y"}, "d": [1, 2]}
    with pytest.raises(ValueError, match=r"'a' is not a mapping"):
        apply_overrides(cfg, ["model.kwargs.a.z=1"])
    with pytest.raises(ValueError, match=r"unknown config key 'data.hlfip' \(did you mean data.hflip\?\)"):
        apply_overrides(cfg, ["data.hlfip=true"])
    with pytest.raises(ValueError, match=r"unknown config key 'train.zzz'; valid here: \['accumulate'"):
        apply_overrides(cfg, ["train.zzz=1"])
    with pytest.raises(ValueError, match=r"--set: train.lr must be > 0"):
        apply_overrides(cfg, ["train.lr=0"])
