"""``OnnxPredictor``: a file exported by ``instseg export`` run on numpy images with onnxruntime (or OpenVINO).

Per image: the conversion rule and the model's resize rule in numpy (``instseg_runtime.image``), then the graph
(padding, normalisation, network and, for the single-shot and two-stage models, every post-processing step up to
the final masks at the image's size), then for the bottom-up models their grouping step
(``instseg_runtime.grouping``). Nothing here imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from instseg_runtime.grouping import GROUPINGS
from instseg_runtime.image import resize_image, resized_shape, to_rgb_uint8
from instseg_runtime.instances import RuntimeInstances

FORMAT_VERSION = "1"
BACKENDS = ("onnxruntime", "openvino")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``instseg`` entries of an exported file's metadata (JSON values decoded)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _decode(session.get_modelmeta().custom_metadata_map, path)


def _decode(raw: dict[str, str], path: str | Path) -> dict[str, Any]:
    if raw.get("instseg_format") != FORMAT_VERSION:
        raise ValueError(f"{path}: not an instseg export (format {raw.get('instseg_format')!r}, expected 1)")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


class OnnxPredictor:
    """Segment numpy images with an exported file: ``predictor(image) -> RuntimeInstances`` (like
    ``instseg.Predictor``).

    ``backend`` is ``"onnxruntime"`` (CPU) or ``"openvino"`` (CPU; ``pip install openvino``); ``threads`` bounds the
    intra-op threads (None: the backend's default). ``class_names``, ``family`` and ``input_rule`` come from the
    file's metadata.
    """

    def __init__(self, path: str | Path, backend: str = "onnxruntime", threads: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such exported model file")
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable files
            raise ValueError(f"{self.path}: cannot load the ONNX file ({err})") from err
        meta = _decode(self._session.get_modelmeta().custom_metadata_map, self.path)
        self.metadata = meta
        self.family: str = meta["instseg_family"]
        self.class_names: list[str] = list(meta["class_names"])
        self.input_rule: dict[str, Any] = meta["input_rule"]
        self.grouping: dict[str, Any] = meta.get("grouping", {})
        self.output_names = [o.name for o in self._session.get_outputs()]
        self.backend = backend
        self._run = self._session_runner()
        if backend == "openvino":
            self._session = None  # type: ignore[assignment]
            self._run = self._openvino_runner(threads)

    def _session_runner(self) -> Any:
        session = self._session

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return dict(zip(self.output_names, session.run(self.output_names, feeds), strict=True))

        return run

    def _openvino_runner(self, threads: int | None) -> Any:
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads} if threads is not None else {}
        compiled = core.compile_model(str(self.path), "CPU", config)
        request = compiled.create_infer_request()

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            result = request.infer(feeds)
            return {out.get_any_name(): np.asarray(result[out]) for out in compiled.outputs}

        return run

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The graph's ``image`` input (float32 [1, 3, h, w], raw 0..255 pixels at the model's size) and the
        image's original (height, width)."""
        rgb = to_rgb_uint8(image)
        oh, ow = rgb.shape[:2]
        h, w = resized_shape(oh, ow, self.input_rule["min_size"], self.input_rule["max_size"])
        static = self.input_rule.get("static_size")
        if static is not None and [h, w] != list(static):
            raise ValueError(
                f"{self.path}: exported for images resized to {static[0]}x{static[1]} only (export with --dynamic for "
                f"any size); this image of {oh}x{ow} is resized to {h}x{w}"
            )
        resized = resize_image(rgb, (h, w))  # [h, w, 3] float32
        return np.ascontiguousarray(resized.transpose(2, 0, 1)[None]), (oh, ow)

    def raw(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
        """The graph's outputs for one image (see ``instseg/export/README.md``) and the image's size."""
        x, (oh, ow) = self.prepare(image)
        return self._run({"image": x, "original_size": np.array([oh, ow], np.int64)}), (oh, ow)

    def __call__(self, image: np.ndarray) -> RuntimeInstances:
        """Objects of one image (numpy HxWx3 uint8, or HxW 8/16-bit grey) at its own size."""
        outputs, size = self.raw(image)
        return self.group(outputs, size)

    def group(self, outputs: dict[str, np.ndarray], size: tuple[int, int] | None = None) -> RuntimeInstances:
        """Instances from the graph's outputs: as they are for the detectors, grouped for the bottom-up models."""
        if self.family == "detector":
            if size is None:
                size = tuple(outputs["masks"].shape[-2:])  # type: ignore[assignment]
            return RuntimeInstances(
                size,
                outputs["boxes"].astype(np.float32).reshape(-1, 4),
                outputs["labels"].astype(np.int64).reshape(-1),
                outputs["scores"].astype(np.float32).reshape(-1),
                outputs["masks"].astype(bool).reshape(-1, *size),
            )
        return GROUPINGS[self.family](outputs, self.grouping)

    predict = __call__
