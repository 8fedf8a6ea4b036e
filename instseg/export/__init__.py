"""Export to ONNX: tensor-only wrappers with the post-processing inside the graph (layout in ``README.md``)."""

from instseg.export.onnx_export import export_graph, to_onnx

__all__ = ["export_graph", "to_onnx"]
