"""``OnnxPredictor``: a file exported by ``instseg export`` run on numpy images with onnxruntime (or OpenVINO).

Per image: the conversion rule and the model's resize rule in numpy (``instseg_runtime.image``), then the graph
(padding, normalisation, network and, for the single-shot and two-stage models, every post-processing step up to
the final masks at the image's size), then for the bottom-up models their grouping step
(``instseg_runtime.grouping``). ``predict_batch`` runs the images of one size together, in one run of the graph
where the file leaves its batch free. Nothing here imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from instseg_runtime.grouping import GROUPINGS
from instseg_runtime.image import resize_image, resized_shape, to_rgb_uint8
from instseg_runtime.instances import RuntimeInstances
from instseg_runtime.polygon_detections import polygon_instances

FORMAT_VERSION = "2"
# families whose outputs are detections (one row per object, ``batch_index`` naming its image)
DETECTION_FAMILIES = ("detector", "polygons")
BACKENDS = ("onnxruntime", "openvino")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``instseg`` entries of an exported file's metadata (JSON values decoded)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _decode(session.get_modelmeta().custom_metadata_map, path)


def _decode(raw: dict[str, str], path: str | Path) -> dict[str, Any]:
    found = raw.get("instseg_format")
    if found != FORMAT_VERSION:
        if found is not None and found.isdigit() and int(found) < int(FORMAT_VERSION):
            old = f"{path}: exported in format {found}; this runtime reads {FORMAT_VERSION}"
            raise ValueError(f"{old}: export it again with this instseg")
        raise ValueError(f"{path}: not an instseg export (format {found!r}, expected {FORMAT_VERSION})")
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
        """The graph's outputs for one image, batch dimension removed (see ``instseg/export/README.md``), and the
        image's size."""
        x, (oh, ow) = self.prepare(image)
        return self.split(self.run_graph(x, (oh, ow)), 1)[0], (oh, ow)

    def run_graph(self, images: np.ndarray, original_size: tuple[int, int]) -> dict[str, np.ndarray]:
        """The graph's outputs for ``images`` float32 [B, 3, h, w] (prepared images of one original size)."""
        return self._run({"image": images, "original_size": np.array(original_size, np.int64)})

    def split(self, outputs: dict[str, np.ndarray], count: int) -> list[dict[str, np.ndarray]]:
        """The outputs of a batch of ``count`` images, one dict per image: detections picked by their
        ``batch_index``, the bottom-up models' maps by their first dimension."""
        if self.family not in DETECTION_FAMILIES:
            return [{name: value[i] for name, value in outputs.items()} for i in range(count)]
        index = outputs["batch_index"].reshape(-1)
        return [
            {name: value[index == i] for name, value in outputs.items() if name != "batch_index"} for i in range(count)
        ]

    @property
    def batchable(self) -> bool:
        """Whether the file takes several images per run (exported with a free batch dimension)."""
        return self.metadata.get("batch") == "dynamic"

    def __call__(self, image: np.ndarray) -> RuntimeInstances:
        """Objects of one image (numpy HxWx3 uint8, or HxW 8/16-bit grey) at its own size."""
        outputs, size = self.raw(image)
        return self.group(outputs, size)

    def predict_batch(self, images: list[np.ndarray], batch_size: int = 8) -> list[RuntimeInstances]:
        """Objects of each image (as ``__call__``), in order: images of one size go through the graph together, up
        to ``batch_size`` per run (one per run where the file's batch is fixed: ``batchable``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        per_run = batch_size if self.batchable else 1
        prepared = [self.prepare(image) for image in images]
        by_size: dict[tuple[int, int, int, int], list[int]] = {}
        for i, (x, size) in enumerate(prepared):
            by_size.setdefault((*size, *x.shape[-2:]), []).append(i)
        results: list[RuntimeInstances | None] = [None] * len(images)
        for key, members in by_size.items():
            size = (key[0], key[1])
            for start in range(0, len(members), per_run):
                chunk = members[start : start + per_run]
                batch = np.concatenate([prepared[i][0] for i in chunk])
                for i, outputs in zip(chunk, self.split(self.run_graph(batch, size), len(chunk)), strict=True):
                    results[i] = self.group(outputs, size)
        return [found for found in results if found is not None]

    def group(self, outputs: dict[str, np.ndarray], size: tuple[int, int] | None = None) -> RuntimeInstances:
        """Instances from the graph's outputs: as they are for the detectors, rasterised for the polygon
        detectors, grouped for the bottom-up models."""
        if self.family == "polygons":
            if size is None:
                raise ValueError(f"{self.path}: polygon detections need the image size to be rasterised")
            return polygon_instances(outputs, size)
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
        if self.family not in GROUPINGS:
            raise ValueError(f"{self.path}: unknown model family {self.family!r}; a newer instseg-runtime may read it")
        return GROUPINGS[self.family](outputs, self.grouping)

    predict = __call__
