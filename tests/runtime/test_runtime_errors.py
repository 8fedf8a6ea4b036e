"""Bad inputs to the runtime raise ValueError naming the file and the fault."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from instseg_runtime import OnnxPredictor
from onnx import TensorProto, helper


def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such exported model file"):
        OnnxPredictor(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"garbage\.onnx: cannot load the ONNX file"):
        OnnxPredictor(garbage)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(foreign))
    with pytest.raises(ValueError, match=r"foreign\.onnx: not an instseg export"):
        OnnxPredictor(foreign)
    with pytest.raises(ValueError, match="backend must be one of"):
        OnnxPredictor(foreign, backend="tensorrt")


def test_files_of_an_older_format_ask_for_a_new_export(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    entry = model.metadata_props.add()
    entry.key, entry.value = "instseg_format", "1"
    old = tmp_path / "old.onnx"
    onnx.save(model, str(old))
    with pytest.raises(ValueError, match=r"old\.onnx: exported in format 1; this runtime reads 2: export it again"):
        OnnxPredictor(old)
