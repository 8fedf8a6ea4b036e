"""Batch prediction on a Ray cluster (Ray Data): sharded, resumable, with the same results as ``instseg predict``.

The images (a folder, a glob, or a ``.txt`` / ``.parquet`` list of paths) are cut into shards of ``shard_size``
images in input order, shard ``k`` holding images ``k * shard_size + 1 ...`` (ids as ``instseg predict`` gives
them). Each shard is one row of a Ray dataset, mapped with ``map_batches`` by ``ShardPredictor``, a stateful
class: each Ray actor loads the model once and then predicts shard after shard, with the same reading and
prediction functions as the single-process loop (``instseg.inference.predict_many.iter_predictions``).

Output folder:
  ``manifest.json``            the run's inputs (count and digest), shard size and shard count;
  ``shards/shard-NNNNNN.jsonl`` one line per image: ``{"image_id", "path", "height", "width", "results"}`` with
                               the image's COCO results, or ``{"image_id", "path", "error"}``; written to a
                               temporary name and renamed, so a shard file exists only when complete;
  ``errors.jsonl``             every failed image with its reason (also in the shards), never dropped silently;
  ``results.json``, ``images.json``  the merge, in the format ``instseg predict`` writes.

A rerun with the same inputs skips the shards already complete (a crashed or stopped run resumes); a rerun with
other inputs is refused unless ``overwrite``. The cluster is Ray's: ``address=None`` starts (or joins) a local
instance, ``address="auto"`` joins the one this machine belongs to, ``"ray://host:10001"`` a remote one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from instseg.inference.model_file import is_onnx_file
from instseg.inference.predict_many import Job, image_jobs

LIST_SUFFIXES = (".txt", ".parquet")


def read_path_list(path: Path) -> list[Path]:
    """Image paths listed in a ``.txt`` (one per line; blank lines and ``#`` comments skipped) or a ``.parquet``
    file (column ``path``); relative paths are taken from the list file's folder."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path, columns=["path"])
        except Exception as err:  # pyarrow raises ArrowInvalid, KeyError... for a bad file or a missing column
            raise ValueError(f"{path}: cannot read the path list ({type(err).__name__}: {err})") from err
        names = [str(p) for p in table.column("path").to_pylist() if p is not None]
    else:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: cannot read the path list ({err})") from err
        names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [p if p.is_absolute() else path.parent / p for p in map(Path, names)]


def collect_jobs(inputs: Sequence[str | Path]) -> list[Job]:
    """``(image_id, path)`` for ``inputs``: path-list files expanded in their order, other inputs as
    ``instseg predict`` finds them; ids count from 1 across all, in order."""
    lists = [Path(i) for i in inputs if Path(i).suffix.lower() in LIST_SUFFIXES and Path(i).is_file()]
    if not lists:
        return image_jobs(inputs)
    if len(lists) != len(inputs):
        raise ValueError("give either path-list files (.txt, .parquet) or images/folders/patterns, not both")
    paths = [p for lst in lists for p in read_path_list(lst)]
    return list(enumerate(paths, start=1))


def _digest(jobs: Sequence[Job]) -> str:
    """A digest of the job list, so a resumed run knows it has the same inputs in the same order."""
    h = hashlib.sha256()
    for image_id, path in jobs:
        h.update(f"{image_id}\t{path}\n".encode())
    return h.hexdigest()


def _write_atomic(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (a shard is there whole or not at all)."""
    from instseg.data.atomic_files import write_atomic  # normal umask permissions, stale temporaries removed

    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def shard_path(out: Path, shard: int) -> Path:
    """The file of shard number ``shard``."""
    return out / "shards" / f"shard-{shard:06d}.jsonl"


class ShardPredictor:
    """A Ray Data stateful map: loads the model once per actor, then predicts whole shards and writes them."""

    def __init__(
        self,
        checkpoint: str | None,
        out: str,
        device: str = "cpu",
        predictor_kwargs: dict[str, Any] | None = None,
        category_ids: list[int] | None = None,
        threads: int | None = None,
    ) -> None:
        from instseg.inference.model_file import load_model_file
        from instseg.inference.predictor import Predictor

        model = load_model_file(checkpoint, device=device, threads=threads)  # a checkpoint or an exported .onnx
        self.predictor = Predictor(model, device=device, **(predictor_kwargs or {}))  # type: ignore[arg-type]
        self.category_ids = category_ids if category_ids is not None else getattr(model, "category_ids", None)
        self.out = Path(out)

    def predict_shard(self, shard: int, jobs: Sequence[Job]) -> tuple[int, int]:
        """Predict one shard's images and write its file; returns ``(images done, images failed)``."""
        from instseg.inference.predict_many import ImagePrediction, iter_predictions

        lines, failed = [], 0
        for image_id, path in jobs:
            try:
                item = next(iter(iter_predictions(self.predictor, [(image_id, Path(path))])))
            except Exception as err:  # a model failure on one image is recorded, never lost or fatal
                item = ImagePrediction(int(image_id), Path(path), error=f"{type(err).__name__}: {err}")
            record: dict[str, Any] = {"image_id": int(image_id), "path": str(path)}
            if item.error is not None or item.instances is None:
                record["error"] = item.error or "no prediction"
                failed += 1
            else:
                record["height"], record["width"] = item.instances.image_size
                record["results"] = item.instances.to_coco(int(image_id), self.category_ids)
            lines.append(json.dumps(record))
        _write_atomic("".join(line + "\n" for line in lines), shard_path(self.out, shard))
        return len(jobs) - failed, failed

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predict every shard row of ``batch`` (columns ``shard``, ``jobs`` as json); returns per-shard counts."""
        done, failed = [], []
        for shard, jobs in zip(batch["shard"].tolist(), batch["jobs"].tolist(), strict=True):
            d, f = self.predict_shard(int(shard), [(int(i), Path(p)) for i, p in json.loads(jobs)])
            done.append(d)
            failed.append(f)
        return {"shard": batch["shard"], "done": np.asarray(done), "failed": np.asarray(failed)}


@dataclass
class RayPredictSummary:
    """What a Ray run did: images predicted and failed, shards run now and skipped as complete, seconds."""

    out: Path
    images: int
    failed: int
    instances: int
    shards_run: int
    shards_skipped: int
    seconds: float

    @property
    def results_path(self) -> Path:
        """The merged COCO results file."""
        return self.out / "results.json"


def prepare_run(out: Path, jobs: Sequence[Job], shard_size: int, overwrite: bool = False) -> dict[str, Any]:
    """Create or reopen the output folder: a matching manifest resumes, anything else needs an empty folder."""
    from instseg.data.output_paths import prepare_output_dir

    manifest = {
        "format": "instseg-ray-shards/1",
        "images": len(jobs),
        "digest": _digest(jobs),
        "shard_size": shard_size,
        "shards": (len(jobs) + shard_size - 1) // shard_size,
    }
    existing = out / "manifest.json"
    if existing.is_file() and not overwrite:
        try:
            previous = json.loads(existing.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{existing}: unreadable manifest ({err}); use overwrite to start again") from err
        if previous != manifest:
            raise ValueError(
                f"{out}: holds a run over other inputs or another shard size ({previous.get('images')} images, "
                f"shards of {previous.get('shard_size')}); use overwrite to start again or another folder"
            )
        return manifest
    folders = sorted({Path(p).parent for _, p in jobs})  # the input folders (not millions of files) are protected
    prepare_output_dir(out, inputs=folders, overwrite=overwrite)
    (out / "shards").mkdir(exist_ok=True)
    _write_atomic(json.dumps(manifest, indent=2), existing)
    return manifest


def merge_shards(out: Path, shards: int) -> tuple[int, int, int]:
    """Join the shard files into ``results.json``, ``images.json`` and ``errors.jsonl`` (in image order).

    ``results.json`` is streamed shard by shard (the same bytes as one ``json.dump`` of the whole list), so the
    merge holds one shard's results at a time, however many images the run had. Returns
    ``(images, failed, instances)``.
    """
    from instseg.data.atomic_files import write_atomic
    from instseg.inference.writers import write_json_atomic

    images: list[dict[str, Any]] = []
    errors: list[str] = []
    skipped: list[str] = []
    count = [0]

    def stream_results(results: IO[bytes]) -> None:
        results.write(b"[")
        for shard in range(shards):
            path = shard_path(out, shard)
            if not path.is_file():
                raise ValueError(f"{path}: shard missing; rerun to complete it")
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if "error" in record:
                    errors.append(json.dumps({k: record[k] for k in ("image_id", "path", "error")}))
                    skipped.append(record["path"])
                    continue
                for result in record["results"]:
                    results.write(((", " if count[0] else "") + json.dumps(result)).encode("utf-8"))
                    count[0] += 1
                size = {"height": record["height"], "width": record["width"]}
                images.append({"id": record["image_id"], "file_name": Path(record["path"]).name, **size})
        results.write(b"]")

    write_atomic(out / "results.json", stream_results)
    write_json_atomic({"images": images, "skipped": skipped}, out / "images.json")
    _write_atomic("".join(e + "\n" for e in errors), out / "errors.jsonl")
    return len(images), len(errors), count[0]


def ray_predict(
    inputs: Sequence[str | Path],
    out: str | Path,
    checkpoint: str | Path | None = None,
    address: str | None = None,
    shard_size: int = 64,
    concurrency: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    device: str = "cpu",
    category_ids: Sequence[int] | None = None,
    predictor_kwargs: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> RayPredictSummary:
    """Predict every image of ``inputs`` on Ray (``concurrency`` actors of ``num_cpus``/``num_gpus`` each) and
    merge the shards into ``OUT/results.json``; see the module docstring for the layout and resuming.

    ``checkpoint=None`` is the shipped default model, a ``.onnx`` file an exported one (run by onnxruntime on the
    actors' CPUs); with ``num_gpus > 0`` pass ``device="cuda"``.
    ``predictor_kwargs`` go to ``instseg.Predictor`` (``score_thr``, ``tile_size``, ``tile_overlap``, ...).
    """
    import ray

    if shard_size < 1 or concurrency < 1:
        raise ValueError(f"shard_size and concurrency must be >= 1, got {shard_size} and {concurrency}")
    start = time.perf_counter()
    out = Path(out)
    jobs = collect_jobs(inputs)
    if not jobs:
        raise ValueError("no image files to predict")
    if is_onnx_file(checkpoint) and (num_gpus > 0 or not device.startswith("cpu")):
        raise ValueError(f"{checkpoint}: exported ONNX files run on CPU actors here, not on {device}")
    manifest = prepare_run(out, jobs, shard_size, overwrite)
    pending = [k for k in range(manifest["shards"]) if not shard_path(out, k).is_file()]
    if pending:
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        rows = [
            {"shard": k, "jobs": json.dumps([[i, str(p)] for i, p in jobs[k * shard_size : (k + 1) * shard_size]])}
            for k in pending
        ]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        mapped = dataset.map_batches(
            ShardPredictor,
            batch_size=1,  # one shard per call: shard files, not Ray's blocks, are the unit of resuming
            compute=ray.data.ActorPoolStrategy(size=min(concurrency, len(rows))),  # each actor loads the model once
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            fn_constructor_kwargs={
                "checkpoint": None if checkpoint is None else str(checkpoint),
                "out": str(out.resolve()),
                "device": device,
                "predictor_kwargs": predictor_kwargs,
                "category_ids": None if category_ids is None else list(category_ids),
                "threads": max(1, int(num_cpus)),  # an exported file's onnxruntime threads: the actor's CPUs
            },
        )
        mapped.materialize()
    images, failed, instances = merge_shards(out, manifest["shards"])
    seconds = time.perf_counter() - start
    return RayPredictSummary(out, images, failed, instances, len(pending), manifest["shards"] - len(pending), seconds)
