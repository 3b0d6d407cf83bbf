"""Training on CamVid: class-weighted cross entropy (or OHEM), Adam with a poly schedule, checkpoints and resume.

A run lives in one folder: ``last.pt`` (everything needed to resume), ``best.pt`` (best score on
the held-out frames, for diagnosis only: what ships is the last checkpoint of a fixed schedule),
and ``log.jsonl`` with one line per epoch. Starting a run in a folder that holds ``last.pt`` resumes it.

Held-out frames: with ``hold_out_drive`` the run never trains on that drive's frames and scores
on all of them (cross-drive validation: an unseen road); otherwise it scores on val, unless val
is part of the training split, and then it scores nothing rather than flatter itself.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from streamseg.classes import IGNORE_INDEX, NUM_CLASSES
from streamseg.cpu import keep_freed_memory
from streamseg.data.camvid import CamVid
from streamseg.errors import ConfigError, InputError, OutputError
from streamseg.eval.confusion import ConfusionMatrix, EvaluationResult
from streamseg.models.registry import MODELS
from streamseg.models.weights import (
    describe_mismatch,
    load_encoder_state,
    load_state,
    read_state_file,
)
from streamseg.observability.progress import Progress
from streamseg.training.augment import Augmentation
from streamseg.training.config import TrainConfig
from streamseg.training.losses import segmentation_loss

logger = logging.getLogger(__name__)  # not ``log``: that names the log.jsonl file below


def _make_run_folder(out: Path) -> None:
    """Creates the run folder, refusing before any work a path that cannot be one (an existing file, a read-only place)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; training writes a folder of checkpoints there")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the run folder {out}: {error.strerror or error}") from None


_CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "best_miou")


def _read_checkpoint(path: Path, advice: str) -> dict:
    """``last.pt`` read safely (tensors only), with the keys a resume needs."""
    try:
        state = read_state_file(path)
    except InputError as error:
        raise InputError(f"cannot resume: {error}; {advice}") from None
    if not isinstance(state, dict) or any(key not in state for key in _CHECKPOINT_KEYS):
        raise InputError(f"cannot resume from {path}: it is not a checkpoint of `streamseg train`; {advice}")
    if not isinstance(state["model"], dict):
        raise InputError(f"cannot resume from {path}: its model entry is not a state dict; {advice}")
    return state


def enet_class_weights(dataset: CamVid, c: float = 1.02) -> torch.Tensor:
    """ENet's weighting, 1 / ln(c + p_class), which lifts rare classes without exploding them."""
    counts = np.zeros(NUM_CLASSES, dtype=np.float64)
    for labels in dataset.labels:
        counts += np.bincount(labels.ravel(), minlength=IGNORE_INDEX + 1)[:NUM_CLASSES]
    frequency = counts / counts.sum()
    return torch.tensor(1.0 / np.log(c + frequency), dtype=torch.float32)


def poly_learning_rate(base: float, step: int, total: int, power: float = 0.9) -> float:
    return base * (1.0 - min(step, total - 1) / total) ** power


def evaluate_model(model: torch.nn.Module, dataset: CamVid, device: str, autocast) -> EvaluationResult:
    """Full-resolution evaluation, one frame at a time."""
    model.eval()
    confusion = ConfusionMatrix()
    with torch.no_grad():
        for index in range(len(dataset)):
            image, labels = dataset[index]
            with autocast():
                logits = model(torch.from_numpy(image)[None].to(device))
            confusion.update(labels, logits.argmax(1)[0].cpu().numpy())
    return EvaluationResult.from_confusion(confusion, len(dataset))


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config.validate()
        spec = MODELS.get(config.model)
        _make_run_folder(config.out)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.device = config.device
        if self.device == "cpu":
            keep_freed_memory()  # each step's activations would otherwise be mapped and faulted in afresh
        self.model = spec.build().to(self.device).to(memory_format=torch.channels_last)
        checkpoint = self._checkpoint_to_resume()
        self.train_set = CamVid(config.data, config.train_split, exclude_drive=config.hold_out_drive)
        self.held_out_set, self.held_out_name = self._held_out_frames()
        # The frames live on the training device as uint8; augmentation runs there too.
        self.images = [torch.from_numpy(image).to(self.device) for image in self.train_set.images]
        self.labels = [torch.from_numpy(labels).to(self.device) for labels in self.train_set.labels]
        self.augmentation: Augmentation | None = config.augmentation()
        self.class_weights = enet_class_weights(self.train_set).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
            fused=self.device.startswith("cuda"),  # one kernel for all parameters: the step is launch-bound on a GPU
        )
        self.batches_per_epoch = len(self.train_set) // config.batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"the batch size {config.batch_size} is larger than the {len(self.train_set)} {config.train_split} frames"
            )
        self.epoch = 0
        self.best_miou = -1.0
        self._resume(checkpoint)

    def _held_out_frames(self) -> tuple[CamVid | None, str]:
        config = self.config
        if config.hold_out_drive is not None:
            return CamVid(config.data, "train+val", drive=config.hold_out_drive), f"drive {config.hold_out_drive}"
        if "val" in config.train_split.split("+"):
            logger.info("val is trained on and no drive is held out: nothing is scored, last.pt is the result")
            return None, ""
        return CamVid(config.data, "val"), "val"

    def autocast(self):
        if self.device.startswith("cuda") and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if self.device == "cpu" and self.config.bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def _checkpoint_to_resume(self) -> dict | None:
        """``last.pt`` of the run folder, checked against the model; None for a new run.

        Read before the data set loads, so a truncated or foreign file is refused at once.
        """
        last = self.config.out / "last.pt"
        if not last.exists():
            return None
        advice = "delete it (or choose another --out) to start afresh"
        state = _read_checkpoint(last, advice)
        problem = describe_mismatch(self.model, state["model"])
        if problem is not None:
            raise InputError(f"cannot resume from {last}: it is not a checkpoint of model {self.config.model} ({problem}); {advice}")
        try:
            state["epoch"], state["best_miou"] = int(state["epoch"]), float(state["best_miou"])
        except (ValueError, TypeError, RuntimeError):
            raise InputError(f"cannot resume from {last}: its epoch or best mIoU is not a number; {advice}") from None
        return state

    def _resume(self, checkpoint: dict | None) -> None:
        if checkpoint is None:
            if self.config.init_from is not None:
                # Fine-tuning: weights only; the optimizer and the schedule start afresh.
                load_state(self.model, Path(self.config.init_from), model_name=self.config.model)
                logger.info("fine-tuning from %s", self.config.init_from)
            if self.config.init_encoder_from is not None:
                loaded = load_encoder_state(self.model, Path(self.config.init_encoder_from))
                logger.info("encoder (%d tensors) starts from %s", loaded, self.config.init_encoder_from)
            return
        last = self.config.out / "last.pt"
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        except (ValueError, TypeError, KeyError):
            raise InputError(
                f"cannot resume from {last}: its optimizer state does not fit model {self.config.model}; "
                "delete it (or choose another --out) to start afresh"
            ) from None
        self.model.load_state_dict(checkpoint["model"])
        self.epoch, self.best_miou = checkpoint["epoch"], checkpoint["best_miou"]
        logger.info("resuming %s at epoch %d", last, self.epoch)

    def _save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(
            {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "best_miou": self.best_miou},
            tmp,
        )
        tmp.replace(path)  # atomic: a kill mid-save never leaves a broken checkpoint

    def _freeze_encoder(self, frozen: bool) -> None:
        # A pre-trained encoder under a new, random head: the head's first large gradients would
        # wreck its features, so the head learns first. Frozen means no gradient and fixed
        # batch-norm statistics and dropout off.
        encoder = self.model.encoder
        for parameter in encoder.parameters():
            parameter.requires_grad_(not frozen)
        encoder.train(not frozen)

    def train_epoch(self) -> float:
        config = self.config
        self.model.train()
        if self.epoch < config.freeze_encoder_epochs:
            self._freeze_encoder(True)
        elif config.freeze_encoder_epochs:
            self._freeze_encoder(False)
        # Seeded per epoch: a resumed run draws the same batches the uninterrupted one would have.
        generator = torch.Generator().manual_seed(config.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.images), generator=generator).tolist()
        batches = self.batches_per_epoch if not config.max_batches else min(config.max_batches, self.batches_per_epoch)
        total_steps = config.epochs * self.batches_per_epoch
        losses: list[float] = []
        started = time.perf_counter()
        progress = Progress(batches, f"batches of epoch {self.epoch + 1}/{config.epochs}")
        # Each step's loss is read one step late: reading it at once (``.item()``) makes the CPU wait for the
        # GPU every step, and the next step's kernels cannot be queued while this one runs. Where launching
        # the kernels from Python is the bound, this gains little; it never costs anything.
        pending: tuple[int, torch.Tensor] | None = None
        for batch in range(batches):
            step = self.epoch * self.batches_per_epoch + batch
            for group in self.optimizer.param_groups:
                group["lr"] = poly_learning_rate(config.learning_rate, step, total_steps)
            indices = order[batch * config.batch_size:(batch + 1) * config.batch_size]
            images, labels = self._batch(indices, generator)
            with self.autocast():
                logits = self.model(images.contiguous(memory_format=torch.channels_last))
            loss = segmentation_loss(config.loss, logits.float(), labels, self.class_weights)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if pending is not None:
                self._record_loss(pending, losses, progress, started)
            pending = (batch, loss.detach())
        if pending is not None:
            self._record_loss(pending, losses, progress, started)
        progress.close()
        return float(np.mean(losses))

    def _record_loss(self, pending: tuple[int, torch.Tensor], losses: list[float], progress: Progress, started: float) -> None:
        batch, loss = pending
        value = loss.item()
        if not np.isfinite(value):
            # Raised before the next checkpoint is written, so the last one never holds the diverged weights.
            raise FloatingPointError(
                f"the loss is {value} at epoch {self.epoch + 1}, batch {batch + 1}; "
                "lower --lr or train without --bf16 (the last checkpoint is intact)"
            )
        losses.append(value)
        elapsed = time.perf_counter() - started
        progress.update(batch + 1, f"loss {np.mean(losses[-20:]):.3f} ({(batch + 1) * self.config.batch_size / elapsed:.1f} img/s)")

    def _batch(self, indices: list[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [self.images[i] for i in indices], [self.labels[i] for i in indices]
        if self.augmentation is None:  # frames as they are (tests that overfit one batch)
            return torch.stack(images).permute(0, 3, 1, 2).float() / 255.0, torch.stack(labels).long()
        return self.augmentation(images, labels, generator)

    def run(self) -> float:
        """Trains to ``config.epochs``; returns the best held-out mIoU seen (-1 when nothing is held out)."""
        log_path = self.config.out / "log.jsonl"
        while self.epoch < self.config.epochs:
            started = time.perf_counter()
            loss = self.train_epoch()
            self.epoch += 1
            record = {"epoch": self.epoch, "loss": loss, "seconds": round(time.perf_counter() - started, 1)}
            scored = self.held_out_set is not None
            if scored and (self.epoch % self.config.eval_every == 0 or self.epoch == self.config.epochs):
                result = evaluate_model(self.model, self.held_out_set, self.device, self.autocast)
                record.update(
                    held_out=self.held_out_name, held_out_miou=result.mean_iou,
                    held_out_pixel_accuracy=result.pixel_accuracy, held_out_class_iou=result.class_iou,
                )
                logger.info("epoch %d: loss %.3f, %s mIoU %.1f", self.epoch, loss, self.held_out_name, 100 * result.mean_iou)
                if result.mean_iou > self.best_miou:
                    self.best_miou = result.mean_iou
                    torch.save(
                        {"model": self.model.state_dict(), "epoch": self.epoch, "held_out": self.held_out_name, "score": result.as_dict()},
                        self.config.out / "best.pt",
                    )
            else:
                logger.info("epoch %d: loss %.3f", self.epoch, loss)
            if self.epoch % self.config.save_every == 0 or self.epoch == self.config.epochs:
                self._save(self.config.out / "last.pt")
            with open(log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
        with open(self.config.out / "config.json", "w") as handle:
            json.dump(asdict(self.config), handle, default=str, indent=2)
        return self.best_miou
