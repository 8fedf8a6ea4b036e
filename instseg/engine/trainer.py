"""The training loop: a plain loop over optimiser steps with accumulation, AMP, EMA, evaluation and checkpoints.

One optimiser step: for each of ``accumulate`` micro-batches, ``(batch, targets, metas) = next(stream)``;
``images = batch.to(device)``; ``outputs = model(images, targets)`` (the model normalises);
``losses = model.loss(outputs, targets)``; the trainer only sums the ``loss_*`` terms and back-propagates the
sum divided by ``accumulate``. Then gradients are clipped, the optimiser and schedule step, and the EMA updates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from instseg.engine.batch_stream import BatchStream
from instseg.engine.checkpoint import load_checkpoint, save_checkpoint
from instseg.engine.config import Config, validate_config
from instseg.engine.config_io import config_to_dict, save_config_yaml
from instseg.engine.distributed import all_gather_object, any_true, get_rank, get_world_size
from instseg.engine.ema import ModelEMA
from instseg.engine.evaluate import evaluate_model
from instseg.engine.metrics_log import MetricsLog
from instseg.engine.optim import build_optimizer, build_scheduler
from instseg.engine.progress import TrainProgress
from instseg.engine.rng import capture_rng_state, restore_rng_state, seed_everything
from instseg.eval.evaluator import DatasetEvaluator
from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures import ImageBatch


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the run stops without saving the bad state."""


class Trainer:
    """Trains ``model`` on ``train_set`` into the run folder ``out_dir``.

    Writes ``config.yaml`` (resolved config), ``metrics.csv``, ``last.pt`` (every ``checkpoint_period`` steps and
    at the end), ``best.pt`` (best ``train.best_metric`` so far; needs ``val_set``) and ``curves.png``. Under
    ``torch.distributed`` (initialised by the caller) the model is wrapped in DDP and only rank 0 writes files.
    ``evaluator`` defaults to an ``InstanceEvaluator`` over ``val_set.to_coco_dict()``; ``category_ids`` and
    ``class_names`` (default: ``train_set``'s) are stored in checkpoints for prediction. ``sample_repeats`` (one
    count per training image) puts image ``i`` that many times into every epoch (``data.repeat_by_appearance``).
    """

    def __init__(
        self,
        cfg: Config,
        model: InstanceSegmenter,
        train_set: Dataset,
        out_dir: str | Path,
        device: str | torch.device = "cpu",
        val_set: Dataset | None = None,
        evaluator: DatasetEvaluator | None = None,
        collate_fn: Callable | None = None,
        category_ids: list[int] | None = None,
        class_names: list[str] | None = None,
        sample_repeats: Sequence[int] | None = None,
    ) -> None:
        from instseg.data.collate import collate_batch
        from instseg.data.loader import build_loader

        validate_config(cfg, "Trainer config")
        t = cfg.train
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.device = torch.device(device)
        self.rank, self.world_size = get_rank(), get_world_size()
        self.main = self.rank == 0
        cuda = self.device.type == "cuda"
        if not cuda:
            torch.set_flush_denormal(True)  # denormal floats made Mask R-CNN ~3x slower on CPU
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp) if cuda and t.amp else None
        self.channels_last = t.channels_last  # on CPU too: oneDNN's NHWC convolutions (benchmarks/README.md)
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.ddp: DistributedDataParallel | None = None
        if self.world_size > 1:
            self.ddp = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if cuda else None,
                find_unused_parameters=t.find_unused_parameters,
            )
        self.optimizer = build_optimizer(self.model, t)
        self.scheduler = build_scheduler(self.optimizer, t)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = ModelEMA(self.model, t.ema_decay) if t.ema_decay else None
        collate = collate_fn or partial(collate_batch, size_divisibility=model.size_divisibility)
        self.stream = BatchStream(
            train_set,
            cfg.data.batch_size,
            collate,
            cfg.data.num_workers,
            t.seed,
            self.rank,
            self.world_size,
            repeats=sample_repeats,
        )
        self.val_loader = None
        self.evaluator = evaluator
        if val_set is not None:
            if evaluator is None:
                self.evaluator = self._default_evaluator(val_set)
            self.val_loader = build_loader(
                val_set, cfg.data.val_batch_size, shuffle=False, num_workers=cfg.data.num_workers,
                distributed=self.world_size > 1, collate_fn=collate,
            )  # fmt: skip
        ids = category_ids if category_ids is not None else getattr(train_set, "category_ids", None)
        names = class_names if class_names is not None else getattr(train_set, "class_names", None)
        self.classes = {
            "category_ids": [int(i) for i in ids] if ids else None,
            "class_names": [str(n) for n in names] if names else None,
        }
        self.metrics_log = MetricsLog(self.out_dir, enabled=self.main)
        self.step = 0
        self.last_metrics: dict[str, float] = {}
        self.best: dict[str, Any] = {"metric": t.best_metric, "value": None, "step": None}

    def _default_evaluator(self, val_set: Dataset) -> DatasetEvaluator:
        from instseg.eval.evaluator import InstanceEvaluator

        if not hasattr(val_set, "to_coco_dict"):
            raise TypeError(f"val_set {type(val_set).__name__} has no to_coco_dict(); pass an evaluator")
        gt = val_set.to_coco_dict()
        ids = getattr(val_set, "category_ids", None)
        return InstanceEvaluator(gt, ids, max_dets=self.cfg.eval.max_dets, score_thr=self.cfg.eval.score_thr)

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (collective under DDP: every rank must call it)."""
        rng = all_gather_object(capture_rng_state())
        return {
            "step": self.step,
            "config": config_to_dict(self.cfg),
            "rebuild_kwargs": dict(self.model.rebuild_kwargs),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "data": self.stream.state_dict(),
            "metrics": dict(self.last_metrics),
            "best": dict(self.best),
            "classes": self.classes,
        }

    def save(self, name: str) -> Path:
        """Write ``out_dir/name`` (``last.pt``/``best.pt``) on rank 0."""
        state = self.state_dict()
        path = self.out_dir / name
        if self.main:
            save_checkpoint(state, path)
        return path

    def resume(self, path: str | Path) -> None:
        """Load a checkpoint written by ``save`` and continue from its step, data position and RNG states."""
        state = load_checkpoint(path, map_location="cpu")
        stored_model = state["config"].get("model")
        if stored_model != config_to_dict(self.cfg)["model"]:
            raise ValueError(f"checkpoint {path}: model config {stored_model} differs from this run's {self.cfg.model}")
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        elif self.ema is not None:  # EMA switched on at resume: start the average from the current weights
            self.ema = ModelEMA(self.model, self.ema.decay)
        self.optimizer.load_state_dict(state["optimizer"])
        # The step count comes from the checkpoint, the schedule's shape from this run's config (max_iters may grow).
        scheduler_state = dict(state["scheduler"])
        scheduler_state["lr_lambdas"] = [dict(fn.__dict__) for fn in self.scheduler.lr_lambdas]
        self.scheduler.load_state_dict(scheduler_state)
        lambdas = zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas, strict=True)
        for group, base_lr, fn in lambdas:  # the optimiser came back with the old schedule's lr: take this one's
            group["lr"] = base_lr * fn(self.scheduler.last_epoch)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.stream.load_state_dict(state["data"])
        self.last_metrics = dict(state.get("metrics") or {})
        self.best = dict(state.get("best") or self.best)
        rng = state["rng"]
        restore_rng_state(rng[self.rank] if len(rng) == self.world_size else rng[0])
        self.metrics_log.resume(self.step)

    # -- one step ---------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()

    def train_step(self) -> dict[str, float]:
        """One optimiser step over ``accumulate`` micro-batches; returns the mean loss terms and ``loss``."""
        t = self.cfg.train
        net = self.ddp if self.ddp is not None else self.model
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for micro in range(t.accumulate):
            batch, targets, _metas = next(self.stream)
            last = micro == t.accumulate - 1
            with self.ddp.no_sync() if (self.ddp is not None and not last) else nullcontext():
                images = batch.to(self.device, non_blocking=True)  # raw 0..255 pixels: the model normalises
                if self.channels_last:
                    images = ImageBatch(
                        images.tensor.contiguous(memory_format=torch.channels_last),
                        images.image_sizes,
                        images.original_sizes,
                    )
                targets = [target.to(self.device) for target in targets]
                with self._autocast():
                    outputs = net(images, targets)
                    losses = self.model.loss(outputs, targets)
                total = self._check_losses(losses)
                self.scaler.scale(total / t.accumulate).backward()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / t.accumulate
            sums["loss"] = sums.get("loss", 0.0) + float(total.detach()) / t.accumulate
        if t.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return sums

    def _check_losses(self, losses: dict[str, Tensor]) -> Tensor:
        """Sum of the loss terms; stops every rank when any rank's sum is not finite (before backward)."""
        if not isinstance(losses, dict) or not losses:
            raise TypeError(f"{type(self.model).__name__}.loss must return a non-empty dict of loss_* scalars")
        total = sum(value.float() for value in losses.values())
        assert isinstance(total, Tensor)
        bad = not bool(torch.isfinite(total.detach()).item())
        if any_true(bad, self.device):
            terms = all_gather_object({k: float(v.detach()) for k, v in losses.items()})
            shown = "; ".join(
                f"rank {r}: " + ", ".join(f"{k}={v:.4g}" for k, v in ts.items()) for r, ts in enumerate(terms)
            )
            last = self.out_dir / "last.pt"
            kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint was written"
            raise NonFiniteLossError(
                f"non-finite loss at step {self.step + 1} ({shown}); training stopped and {kept}. "
                "Try a lower train.lr, more train.warmup_iters or train.clip_grad_norm."
            )
        return total

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Figures of the EMA model (or the model) on the validation set (``{}`` without one, and off rank 0)."""
        if self.val_loader is None or self.evaluator is None:
            return {}
        model: InstanceSegmenter = self.ema.module if self.ema is not None else self.model  # type: ignore[assignment]
        return evaluate_model(model, self.val_loader, self.evaluator, self.device, self.amp_dtype, self.channels_last)

    def _improved(self, metrics: dict[str, float]) -> bool:
        value = metrics.get(self.best["metric"])
        if value is None or not math.isfinite(value):
            return False
        old = self.best["value"]
        better = old is None or (value > old if self.cfg.train.best_mode == "max" else value < old)
        if better:
            self.best.update(value=float(value), step=self.step)
        return better

    # -- the loop ---------------------------------------------------------------------------------
    def train(self, resume: bool = False, stop_at: int | None = None) -> dict[str, float]:
        """Run until ``train.max_iters`` (or until step ``stop_at``, saving ``last.pt`` there); return the last
        evaluation figures. ``resume=True`` continues from ``out_dir/last.pt``."""
        t = self.cfg.train
        last_path = self.out_dir / "last.pt"
        if resume:
            if not last_path.is_file():
                raise ValueError(f"--resume: {last_path} does not exist")
            self.resume(last_path)
        else:
            if last_path.exists():
                raise ValueError(f"{self.out_dir} already holds a run (last.pt); use --resume or another --out")
            seed_everything(t.seed + self.rank)
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config_yaml(self.cfg, self.out_dir / "config.yaml")
        end = t.max_iters if stop_at is None else min(stop_at, t.max_iters)
        window: dict[str, float] = {}
        window_steps, window_t0 = 0, time.perf_counter()
        with TrainProgress(t.max_iters, self.step, enabled=self.main) as progress:
            if self.main:
                progress.print(
                    f"training {self.cfg.model.name} for {t.max_iters} steps ({self.stream.batches_per_epoch} "
                    f"batches/epoch x {self.world_size} process(es)), from step {self.step}, into {self.out_dir}"
                )
            while self.step < end:
                lr = float(self.optimizer.param_groups[0]["lr"])
                terms = self.train_step()  # NonFiniteLossError propagates: nothing is saved after a bad step
                for key, value in terms.items():
                    window[key] = window.get(key, 0.0) + value
                window_steps += 1
                log_now = self.step % t.log_period == 0 or self.step == end
                if log_now:
                    row = {k: v / window_steps for k, v in window.items()}
                    row["lr"] = lr
                    row["it_per_s"] = window_steps / max(time.perf_counter() - window_t0, 1e-9)
                    self.metrics_log.log(self.step, row)
                    window, window_steps, window_t0 = {}, 0, time.perf_counter()
                progress.update(self.step, terms["loss"], lr, log_now)
                final = self.step == t.max_iters
                if self.val_loader is not None and ((t.eval_period and self.step % t.eval_period == 0) or final):
                    self._evaluate_and_keep_best(progress)
                if (t.checkpoint_period and self.step % t.checkpoint_period == 0) or self.step == end:
                    self.save("last.pt")
        if self.step >= t.max_iters and self.main:
            self.metrics_log.plot(self.out_dir / "curves.png")
        self.metrics_log.close()
        return dict(self.last_metrics)

    def _evaluate_and_keep_best(self, progress: TrainProgress) -> None:
        """Evaluate (every rank), log on rank 0, and write ``best.pt`` when ``train.best_metric`` improved."""
        metrics = {str(k): float(v) for k, v in self.evaluate().items()}  # plain floats: weights_only-safe
        improved = False
        if self.main:
            self.last_metrics = metrics
            self.metrics_log.log(self.step, metrics)
            keys = ("segm/AP", "segm/AP50", "bbox/AP", "match/F1@0.5")
            shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)
            progress.print(f"step {self.step}: {shown or 'no figures'}")
            if self.best["metric"] not in metrics:
                progress.print(f"warning: best metric {self.best['metric']!r} is not among the evaluation figures")
            improved = self._improved(metrics)
        if any_true(improved, self.device):  # collective: every rank gathers RNG states for the checkpoint
            path = self.save("best.pt")
            if self.main:
                progress.print(f"new best {self.best['metric']} {self.best['value']:.4f} -> {path}")
