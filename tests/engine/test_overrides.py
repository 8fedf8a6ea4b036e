"""``--set key=value`` overrides: typed by the dataclass fields, free-form inside model.kwargs, clear errors."""

from __future__ import annotations

import pytest

from instseg.engine.config import Config
from instseg.engine.overrides import apply_overrides, parse_override


def test_values_take_the_field_types() -> None:
    cfg = apply_overrides(
        Config(),
        [
            "train.lr=1e-3",
            "train.max_iters=250",
            "train.amp=bf16",
            "train.ema_decay=none",
            "train.clip_grad_norm=null",
            "train.steps=[100, 200]",
            "data.train_min_sizes=320",
            "data.hflip=false",
            "data.crop=None",
            "name=007",
        ],
    )
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)
    assert cfg.train.max_iters == 250 and cfg.train.amp == "bf16"
    assert cfg.train.ema_decay is None and cfg.train.clip_grad_norm is None
    assert cfg.train.steps == (100, 200) and cfg.data.train_min_sizes == (320,)
    assert cfg.data.hflip is False and cfg.data.crop is None
    assert cfg.name == "007"


def test_original_is_untouched_and_kwargs_are_free_form() -> None:
    base = Config()
    cfg = apply_overrides(base, ["model.kwargs.num_classes=3", "model.kwargs.rpn.top_n=[1,2]", "model.module=pkg.mod"])
    assert cfg.model.kwargs == {"num_classes": 3, "rpn": {"top_n": [1, 2]}}
    assert cfg.model.module == "pkg.mod"
    assert base.model.kwargs == {} and base.model.module is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=0.1", r"unknown config key 'train.lrr' \(did you mean train.lr\?\)"),
        ("trian.lr=0.1", r"unknown config key 'trian'"),
        ("train.lr=fast", r"train.lr expects float"),
        ("train.optimizer=adam", r"train.optimizer must be one of \['sgd', 'adamw'\]"),
        ("train.max_iters=-5", r"train.max_iters must be >= 1"),
        ("train=1", r"'train' is a section"),
        ("train.lr.x=1", r"train.lr is a value, not a section"),
        ("train.lr", r"expects KEY=VALUE"),
    ],
)
def test_bad_overrides_raise_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_overrides(Config(), [override])


def test_parse_override_keeps_equals_in_values() -> None:
    assert parse_override("data.train=/a=b/c") == ("data.train", "/a=b/c")


def test_repeat_by_appearance_is_set_per_entry_and_checked() -> None:
    cfg = apply_overrides(Config(), ["data.repeat_by_appearance.color=3", "data.repeat_by_appearance={gray_bright: 2}"])
    assert cfg.data.repeat_by_appearance == {"gray_bright": 2}  # the whole mapping replaces the entry set before
    cfg = apply_overrides(Config(), ["data.repeat_by_appearance.color=3"])
    assert cfg.data.repeat_by_appearance == {"color": 3}
    with pytest.raises(ValueError, match=r"--set: .*unknown appearance\(s\) \['he'\]"):
        apply_overrides(Config(), ["data.repeat_by_appearance.he=3"])
    with pytest.raises(ValueError, match="whole numbers >= 1"):
        apply_overrides(Config(), ["data.repeat_by_appearance.color=0.5"])
