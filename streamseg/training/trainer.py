"""Training on CamVid: class-weighted cross entropy, Adam with a poly schedule, checkpoints and resume.

A run lives in one folder: ``last.pt`` (everything needed to resume), ``best.pt`` (best val mIoU),
and ``log.jsonl`` with one line per epoch. Starting a run in a folder that holds ``last.pt`` resumes it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from streamseg.classes import IGNORE_INDEX, NUM_CLASSES
from streamseg.data.camvid import Augmentation, CamVid
from streamseg.errors import ConfigError, InputError, OutputError
from streamseg.evaluation import ConfusionMatrix, EvaluationResult
from streamseg.models.registry import MODELS
from streamseg.models.weights import (
    describe_mismatch,
    load_encoder_state,
    load_state,
    read_state_file,
)
from streamseg.progress import Progress


@dataclass
class TrainConfig:
    model: str
    data: Path
    out: Path
    epochs: int = 150
    batch_size: int = 8
    crop: tuple[int, int] = (320, 320)
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    bf16: bool = False  # CPU autocast; only where the CPU has native bf16
    amp: bool = True  # fp16 autocast on CUDA
    device: str = "cpu"
    threads: int = 0  # 0: leave torch's default
    eval_every: int = 1
    seed: int = 0
    max_batches: int = 0  # 0: whole epochs; >0 stops early (for tests)
    train_split: str = "train"
    init_from: Path | None = None  # weights to fine-tune from when the run folder holds no last.pt
    init_encoder_from: Path | None = None  # another model's weights to start only the encoder from
    freeze_encoder_epochs: int = 0  # the first epochs train everything but the encoder (a started one)
    extra: dict = field(default_factory=dict)

    def validate(self) -> "TrainConfig":
        """Refuses settings that would crash later or train nothing (``--epochs 0`` reported mIoU -100)."""
        _require(self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}")
        _require(self.batch_size >= 1, f"batch size must be at least 1, not {self.batch_size}")
        _require(self.eval_every >= 1, f"eval_every must be at least 1, not {self.eval_every}")
        _require(self.threads >= 0, f"threads must be 0 (torch's default) or more, not {self.threads}")
        _require(self.freeze_encoder_epochs >= 0, f"freeze_encoder_epochs cannot be negative, not {self.freeze_encoder_epochs}")
        _require(self.max_batches >= 0, f"max_batches cannot be negative, not {self.max_batches}")
        _require(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            f"the learning rate must be a positive number, not {self.learning_rate}",
        )
        _require(all(8 <= side <= 4096 for side in self.crop), f"crop sides must be in 8..4096, not {self.crop}")
        _check_device(self.device)
        return self


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_device(device: str) -> None:
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}: use cpu or cuda (cuda:N for one of several GPUs)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} needs a CUDA GPU, and torch sees none here")
    _require(kind in ("cpu", "cuda"), f"training runs on cpu or cuda, not {device}")


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
        self.model = spec.build().to(self.device).to(memory_format=torch.channels_last)
        checkpoint = self._checkpoint_to_resume()
        self.train_set = CamVid(config.data, config.train_split, Augmentation(crop=tuple(config.crop)), seed=config.seed)
        self.val_set = CamVid(config.data, "val")
        self.class_weights = enet_class_weights(self.train_set).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        self.batches_per_epoch = len(self.train_set) // config.batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"the batch size {config.batch_size} is larger than the {len(self.train_set)} {config.train_split} frames"
            )
        self.epoch = 0
        self.best_miou = -1.0
        self._resume(checkpoint)

    def autocast(self):
        if self.device.startswith("cuda") and self.config.amp:
            return torch.autocast("cuda", dtype=torch.float16)
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
                print(f"fine-tuning from {self.config.init_from}", file=sys.stderr)
            if self.config.init_encoder_from is not None:
                loaded = load_encoder_state(self.model, Path(self.config.init_encoder_from))
                print(f"encoder ({loaded} tensors) starts from {self.config.init_encoder_from}", file=sys.stderr)
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
        self.train_set.rng = np.random.default_rng(self.config.seed + self.epoch)
        print(f"resuming {last} at epoch {self.epoch} (best val mIoU {100 * self.best_miou:.1f})", file=sys.stderr)

    def _save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(
            {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "best_miou": self.best_miou},
            tmp,
        )
        tmp.replace(path)  # atomic: a kill mid-save never leaves a broken checkpoint

    def _freeze_encoder(self, frozen: bool) -> None:
        # A pre-trained encoder under a new, random head: the head's first large gradients would
        # wreck its features (a DeepLab head on the shipped ERFNet encoder fell from 65.8 % to
        # 39 % val in two epochs), so the head learns first. Frozen means no gradient and fixed
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
        order = self.train_set.rng.permutation(len(self.train_set))
        batches = self.batches_per_epoch if not config.max_batches else min(config.max_batches, self.batches_per_epoch)
        total_steps = config.epochs * self.batches_per_epoch
        losses = []
        started = time.perf_counter()
        progress = Progress(batches, f"batches of epoch {self.epoch + 1}/{config.epochs}")
        for batch in range(batches):
            step = self.epoch * self.batches_per_epoch + batch
            for group in self.optimizer.param_groups:
                group["lr"] = poly_learning_rate(config.learning_rate, step, total_steps)
            indices = order[batch * config.batch_size:(batch + 1) * config.batch_size]
            images, labels = zip(*(self.train_set[i] for i in indices))
            images = torch.from_numpy(np.stack(images)).to(self.device).contiguous(memory_format=torch.channels_last)
            labels = torch.from_numpy(np.stack(labels)).to(self.device)
            with self.autocast():
                logits = self.model(images)
            loss = F.cross_entropy(logits.float(), labels, weight=self.class_weights, ignore_index=IGNORE_INDEX)
            if not torch.isfinite(loss):
                # Stop before a non-finite step reaches the weights and the next checkpoint.
                raise FloatingPointError(
                    f"the loss is {loss.item()} at epoch {self.epoch + 1}, batch {batch + 1}; "
                    "lower --lr or train without --bf16 (the last checkpoint is intact)"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
            elapsed = time.perf_counter() - started
            progress.update(batch + 1, f"loss {np.mean(losses[-20:]):.3f} ({(batch + 1) * config.batch_size / elapsed:.1f} img/s)")
        progress.close()
        return float(np.mean(losses))

    def run(self) -> float:
        """Trains to ``config.epochs``; returns the best val mIoU seen."""
        log_path = self.config.out / "log.jsonl"
        while self.epoch < self.config.epochs:
            started = time.perf_counter()
            loss = self.train_epoch()
            self.epoch += 1
            record = {"epoch": self.epoch, "loss": loss, "seconds": round(time.perf_counter() - started, 1)}
            if self.epoch % self.config.eval_every == 0 or self.epoch == self.config.epochs:
                result = evaluate_model(self.model, self.val_set, self.device, self.autocast)
                record.update(val_miou=result.mean_iou, val_pixel_accuracy=result.pixel_accuracy, val_class_iou=result.class_iou)
                print(f"epoch {self.epoch}: loss {loss:.3f}, val mIoU {100 * result.mean_iou:.1f}", file=sys.stderr)
                if result.mean_iou > self.best_miou:
                    self.best_miou = result.mean_iou
                    torch.save({"model": self.model.state_dict(), "epoch": self.epoch, "val": result.as_dict()}, self.config.out / "best.pt")
            self._save(self.config.out / "last.pt")
            with open(log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
        with open(self.config.out / "config.json", "w") as handle:
            json.dump(asdict(self.config), handle, default=str, indent=2)
        return self.best_miou
