"""From a config to data sets by value: which validation data a folder gives, absolute paths, the class count
filled in (or refused), and a faulty annotation stopping the run by default rather than being dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_testdata import tiny_config, write_synthetic

from instseg.engine.launch import appearance_sampling, build_datasets, resolve_data, with_num_classes


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("launch") / "data", num_train=3, num_val=2, size=32)


def test_a_folder_with_a_val_split_validates_on_it(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(data.parent)
    cfg = resolve_data(tiny_config(Path("data")))
    assert cfg.data.train == cfg.data.val == str(data.resolve())
    train, val = build_datasets(cfg)
    assert (len(train), len(val)) == (3, 2) and val.category_ids == train.category_ids == [1]
    json_only = resolve_data(tiny_config(data / "annotations" / "instances_train.json"))
    assert json_only.data.val is None and build_datasets(json_only)[1] is None  # a json file names one split
    no_val = tiny_config(data)
    no_val.data.val_split = None
    assert resolve_data(no_val).data.val is None
    with pytest.raises(ValueError, match="no training data"):
        resolve_data(tiny_config(None))


def test_class_count_is_filled_in_or_must_agree() -> None:
    cfg = tiny_config(None)
    filled = with_num_classes(cfg, 3, "ann.json")
    assert filled.model.kwargs["num_classes"] == 3 and "num_classes" not in cfg.model.kwargs
    assert with_num_classes(filled, 3, "ann.json").model.kwargs["num_classes"] == 3
    with pytest.raises(ValueError, match=r"ann\.json: model.kwargs.num_classes=3 but the data set has 2 categories"):
        with_num_classes(filled, 2, "ann.json")


def test_a_faulty_annotation_stops_the_run_unless_skipping_was_asked(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    (bad / "annotations").mkdir(parents=True)
    (bad / "images").symlink_to(data / "images")
    coco = json.loads((data / "annotations" / "instances_train.json").read_text())
    coco["annotations"][0]["category_id"] = 99
    (bad / "annotations" / "instances_train.json").write_text(json.dumps(coco))
    cfg = resolve_data(tiny_config(bad))  # the default data config
    with pytest.raises(ValueError, match="99"):
        build_datasets(cfg)
    cfg.data.skip_invalid = True
    with pytest.warns(UserWarning):
        train, _ = build_datasets(cfg)
    assert sum(len(train[i][1]) for i in range(len(train))) == len(coco["annotations"]) - 1


def test_validation_categories_must_be_the_trainings(data: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "annotations").mkdir(parents=True)
    (other / "images").symlink_to(data / "images")
    coco = json.loads((data / "annotations" / "instances_val.json").read_text())
    coco["categories"][0]["id"] = 5
    for ann in coco["annotations"]:
        ann["category_id"] = 5
    (other / "annotations" / "instances_val.json").write_text(json.dumps(coco))
    cfg = tiny_config(data)
    cfg.data.val = str(other)
    with pytest.raises(ValueError, match=r"categories \[5\] differ from the training data's \[1\]"):
        build_datasets(resolve_data(cfg))


def test_appearance_sampling_gives_per_image_repeats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tiny_coco import make_coco_dir

    from instseg.data.coco import CocoDataset

    train_set = CocoDataset(make_coco_dir(tmp_path))  # one colour, one grey bright and one black image
    cfg = tiny_config(None)
    assert appearance_sampling(train_set, cfg) is None
    cfg.data.repeat_by_appearance = {"color": 3, "gray_dark": 2}
    assert appearance_sampling(train_set, cfg) == [3, 1, 2]
    assert "gray_dark 1 x2, gray_bright 1 x1, color 1 x3 -> 6 per epoch" in capsys.readouterr().out
