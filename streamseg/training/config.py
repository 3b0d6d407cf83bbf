"""``streamseg train``'s settings, declared once: the CLI's train flags and the GPU trainer read them from here.

Kept apart from the trainer so that building the command line does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from streamseg.cpu import emulated_bf16_reason
from streamseg.errors import ConfigError

LOSSES = ("weighted-ce", "ohem")  # streamseg.training.losses

if TYPE_CHECKING:
    from streamseg.training.augment import Augmentation


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
    amp: bool = True  # bf16 autocast on CUDA (bf16 needs no loss scaling, unlike fp16)
    device: str = "cpu"
    threads: int = 0  # 0: leave torch's default
    eval_every: int = 1
    seed: int = 0
    max_batches: int = 0  # 0: whole epochs; >0 stops early (for tests)
    save_every: int = 1  # epochs between last.pt writes (and always the last epoch)
    train_split: str = "train"  # or "train+val": all 468 labelled frames
    hold_out_drive: str | None = None  # never trained on; scored every eval_every epochs
    scale_range: tuple[float, float] = (0.5, 1.5)
    jitter: float = 0.25
    hue: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    loss: str = "weighted-ce"
    init_from: Path | None = None  # weights to fine-tune from when the run folder holds no last.pt
    init_encoder_from: Path | None = None  # another model's weights to start only the encoder from
    freeze_encoder_epochs: int = 0  # the first epochs train everything but the encoder (a started one)
    extra: dict = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        """Refuses settings that would crash later or train nothing (``--epochs 0`` reported mIoU -100)."""
        _require(self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}")
        _require(self.batch_size >= 1, f"batch size must be at least 1, not {self.batch_size}")
        _require(self.eval_every >= 1, f"eval_every must be at least 1, not {self.eval_every}")
        _require(self.save_every >= 1, f"save_every must be at least 1, not {self.save_every}")
        _require(self.threads >= 0, f"threads must be 0 (torch's default) or more, not {self.threads}")
        _require(self.freeze_encoder_epochs >= 0, f"freeze_encoder_epochs cannot be negative, not {self.freeze_encoder_epochs}")
        _require(self.max_batches >= 0, f"max_batches cannot be negative, not {self.max_batches}")
        _require(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            f"the learning rate must be a positive number, not {self.learning_rate}",
        )
        _require(all(8 <= side <= 4096 for side in self.crop), f"crop sides must be in 8..4096, not {self.crop}")
        _require(self.loss in LOSSES, f"unknown loss {self.loss!r}; expected one of {', '.join(LOSSES)}")
        try:
            self.augmentation()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        _check_device(self.device)
        if self.bf16 and self.device == "cpu" and (reason := emulated_bf16_reason()):
            raise ConfigError(f"--bf16: {reason}")
        return self

    def augmentation(self) -> Augmentation:
        from streamseg.training.augment import Augmentation

        return Augmentation(
            crop=tuple(self.crop), scale_range=tuple(self.scale_range), jitter=self.jitter,
            hue=self.hue, blur=self.blur, noise=self.noise,
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_device(device: str) -> None:
    import torch  # here, not at the top: building the command line imports this module

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}: use cpu or cuda (cuda:N for one of several GPUs)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} needs a CUDA GPU, and torch sees none here")
    _require(kind in ("cpu", "cuda"), f"training runs on cpu or cuda, not {device}")


