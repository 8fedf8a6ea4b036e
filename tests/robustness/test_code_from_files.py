"""A checkpoint that names ``config.model.module`` never makes instseg import code the user did not allow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from instseg.cli.main import app
from instseg.engine.checkpoint import (
    ALLOW_MODULES_ENV,
    default_weights_path,
    import_model_module,
    load_checkpoint,
    load_model,
    save_checkpoint,
)

EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


@pytest.fixture
def crafted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, str]:
    """A weights-only checkpoint whose config names a module that sits, with that name, in the working folder."""
    name = f"evil_{tmp_path.name.replace('-', '_')}"
    marker = tmp_path / "marker.txt"
    (tmp_path / f"{name}.py").write_text(EVIL.format(marker=str(marker)))
    state = load_checkpoint(default_weights_path())
    state["config"]["model"]["module"] = name
    ckpt = save_checkpoint(state, tmp_path / "M.pt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python -m instseg` would put the working folder first
    monkeypatch.delenv(ALLOW_MODULES_ENV, raising=False)
    return ckpt, marker, name


def test_load_model_refuses_a_module_named_by_the_file(crafted: tuple[Path, Path, str]) -> None:
    ckpt, marker, name = crafted
    with pytest.raises(ValueError, match=rf"model.module '{name}' is not part of instseg"):
        load_model(ckpt)
    assert not marker.exists() and name not in sys.modules


def test_cli_predict_refuses_it_too(crafted: tuple[Path, Path, str], tmp_path: Path) -> None:
    ckpt, marker, name = crafted
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    result = CliRunner().invoke(app, ["predict", str(ckpt), str(image), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and name in result.output and "Traceback" not in result.output
    assert not marker.exists()


def test_an_explicit_allow_imports_it(crafted: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, marker, name = crafted
    import_model_module(name, allow_modules=[name])  # the user allowed it: imported
    assert marker.exists()
    sys.modules.pop(name, None)
    marker.unlink()
    monkeypatch.setenv(ALLOW_MODULES_ENV, f"other, {name}")
    import_model_module(name)
    assert marker.exists()
    sys.modules.pop(name, None)


@pytest.mark.parametrize("module", ["instseg.__main__", "os; import x", "../evil", "", "instseg._private"])
def test_names_that_are_never_imported(module: str) -> None:
    if module == "":
        import_model_module(module)  # no module: nothing to do
        return
    with pytest.raises(ValueError, match=r"model\.module"):
        import_model_module(module)


def test_instseg_modules_are_allowed() -> None:
    import_model_module("instseg.methods.yolact")
