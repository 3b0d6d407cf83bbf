"""Training the FlowNetS-style network on generated pairs: checkpoints, resume, held-out end-point error.

A run lives in one folder: ``last.pt`` (everything needed to resume), ``best.pt`` (lowest
held-out EPE) and ``log.jsonl`` (one line per evaluation). Starting a run in a folder that
holds ``last.pt`` resumes it. Pairs are a function of their seed, so a resumed run sees
exactly the pairs an uninterrupted one would have.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from streamseg.cpu import emulated_bf16_reason
from streamseg.errors import ConfigError
from streamseg.observability.logs import STDERR
from streamseg.models.weights import file_sha256
from streamseg.observability.progress import Progress
from streamseg.temporal.flownet import (
    SCALE_WEIGHTS,
    FlowNetS,
    flownet_s,
    multiscale_epe,
)
from streamseg.temporal.flownet_estimator import WEIGHTS_NAME, stack_pair

logger = logging.getLogger(__name__)  # not ``log``: that names the log.jsonl file below
from streamseg.temporal.measures import endpoint_error
from streamseg.temporal.synthetic_pairs import (
    HELD_OUT_SEEDS,
    TRAIN_SEEDS,
    FlowPair,
    FlowPairGenerator,
)
from streamseg.training.trainer import poly_learning_rate

_SEEDS_PER_RUN_SEED = 100_000_000  # runs with different --seed draw disjoint pairs


@dataclass
class FlowTrainConfig:
    camvid: Path
    out: Path
    steps: int = 100_000
    batch_size: int = 8
    size: tuple[int, int] = (360, 480)  # (height, width) of the generated pairs
    width: float = 0.25  # the network's channel multiplier
    learning_rate: float = 1e-3
    weight_decay: float = 4e-4  # as in the paper's training
    bf16: bool = False  # CPU autocast; only where the CPU has native bf16
    device: str = "cpu"
    threads: int = 0  # 0: leave torch's default
    eval_every: int = 1000
    eval_pairs: int = 50
    checkpoint_every: int = 200
    seed: int = 0


def batch_tensors(pairs: list[FlowPair], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked frames (N, 6, H, W) in [0, 1] and true flow (N, 2, H, W) in pixels."""
    inputs = torch.cat([stack_pair(pair.previous, pair.current) for pair in pairs])
    truth = torch.from_numpy(np.stack([pair.flow.transpose(2, 0, 1) for pair in pairs]))
    return inputs.to(device), truth.to(device)


def held_out_epe(model: FlowNetS, pairs: list[FlowPair], device: str, autocast) -> float:
    """Mean end-point error at full resolution over held-out pairs, one pair at a time."""
    model.eval()
    errors = []
    with torch.inference_mode():
        for pair in pairs:
            inputs, _ = batch_tensors([pair], device)
            with autocast():
                flow = model(inputs)
            errors.append(endpoint_error(flow[0].float().permute(1, 2, 0).cpu().numpy(), pair.flow))
    return float(np.mean(errors))


class FlowNetTrainer:
    def __init__(self, config: FlowTrainConfig, *, progress_stream=STDERR) -> None:
        self.config = config
        self.progress_stream = progress_stream  # where the step counter redraws; messages go through logging
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.device = config.device
        if config.bf16 and self.device == "cpu" and (reason := emulated_bf16_reason()):
            raise ConfigError(f"--bf16: {reason}")
        self.model = flownet_s(width=config.width).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        self.train_pairs = FlowPairGenerator.from_camvid(config.camvid, size=config.size)
        self.held_out = FlowPairGenerator.from_camvid(config.camvid, held_out=True, size=config.size)
        self.step = 0
        self.best_epe = float("inf")
        config.out.mkdir(parents=True, exist_ok=True)
        self._resume()

    def autocast(self):
        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if self.config.bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def _resume(self) -> None:
        last = self.config.out / "last.pt"
        if not last.exists():
            return
        state = torch.load(last, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.best_epe = float(state["best_epe"])
        logger.info("resuming %s at step %d (best held-out EPE %.3f)", last, self.step, self.best_epe)

    def _save(self, path: Path, **extra) -> None:
        tmp = path.with_suffix(".tmp")
        config = json.loads(json.dumps(asdict(self.config), default=str))  # plain values, loadable with weights_only
        torch.save({"model": self.model.state_dict(), "step": self.step, "best_epe": self.best_epe, "config": config, **extra}, tmp)
        tmp.replace(path)  # atomic: a kill mid-save never leaves a broken checkpoint

    def _checkpoint(self) -> None:
        self._save(self.config.out / "last.pt", optimizer=self.optimizer.state_dict())

    def _batch(self, step: int) -> list[FlowPair]:
        first = TRAIN_SEEDS.start + self.config.seed * _SEEDS_PER_RUN_SEED + step * self.config.batch_size
        return [self.train_pairs.pair(seed) for seed in range(first, first + self.config.batch_size)]

    def train_step(self, pairs: list[FlowPair]) -> float:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = poly_learning_rate(self.config.learning_rate, self.step, self.config.steps)
        inputs, truth = batch_tensors(pairs, self.device)
        with self.autocast():
            pyramid = self.model.forward_pyramid(inputs)
        loss = multiscale_epe([level.float() for level in pyramid], truth)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.item())

    def evaluate(self) -> float:
        pairs = list(self.held_out.pairs(HELD_OUT_SEEDS[: self.config.eval_pairs]))
        return held_out_epe(self.model, pairs, self.device, self.autocast)

    def run(self) -> float:
        """Trains to ``config.steps``; returns the best held-out EPE seen."""
        config = self.config
        losses: list[float] = []
        started = time.perf_counter()
        first_step = self.step
        # The next batch is generated on a second thread while this one trains (OpenCV releases the GIL).
        self._progress = progress = Progress(config.steps, "steps", stream=self.progress_stream)
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            upcoming = prefetch.submit(self._batch, self.step) if self.step < config.steps else None
            while upcoming is not None:
                pairs = upcoming.result()
                upcoming = prefetch.submit(self._batch, self.step + 1) if self.step + 1 < config.steps else None
                losses.append(self.train_step(pairs))
                rate = (self.step - first_step) * config.batch_size / (time.perf_counter() - started)
                progress.update(self.step, f"loss {np.mean(losses[-20:]):.2f} ({rate:.1f} pairs/s)")
                if self.step % config.checkpoint_every == 0:
                    self._checkpoint()
                if self.step % config.eval_every == 0 or self.step == config.steps:
                    self._log_evaluation(losses, started)
                    losses = []
        progress.close()
        self._checkpoint()
        with open(config.out / "config.json", "w") as handle:
            json.dump(asdict(config), handle, default=str, indent=2)
        return self.best_epe

    def _log_evaluation(self, losses: list[float], started: float) -> None:
        epe = self.evaluate()
        record = {"step": self.step, "loss": float(np.mean(losses)) if losses else None, "heldout_epe": epe,
                  "seconds": round(time.perf_counter() - started, 1)}
        self._progress.close()  # the evaluation's line starts on a line of its own
        logger.info("step %d: loss %.2f, held-out EPE %.3f px", self.step, record["loss"], epe)
        if epe < self.best_epe:
            self.best_epe = epe
            self._save(self.config.out / "best.pt", heldout_epe=epe)
        self._checkpoint()
        with open(self.config.out / "log.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")


def export_weights(checkpoint: Path, folder: Path, command: str = "", measured: list[dict] | None = None) -> Path:
    """Writes ``flownet.pt`` (fp32 state dict) and its model card ``flownet.json`` into ``folder``.

    ``command`` is how the run was trained; ``measured`` are tools/flow_epe.py's rows (every
    estimator, so the card compares ours with the classical ones at the size users run).
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = state["config"]
    weights_path = folder / f"{WEIGHTS_NAME}.pt"
    torch.save({name: tensor.float() for name, tensor in state["model"].items()}, weights_path)
    card = {
        "model": "FlowNetS-style (streamseg.temporal.flownet.flownet_s)",
        "width": config["width"],
        "input": "previous and current RGB frames stacked (N, 6, H, W) in [0, 1]",
        "output": "backward flow of the current frame in pixels: current[y, x] shows previous at (x + u, y + v)",
        "training_data": "FlyingChairs-style pairs generated from CamVid train frames (streamseg.temporal.synthetic_pairs)",
        "training": {"steps": int(state["step"]), "batch_size": config["batch_size"], "size": config["size"],
                     "learning_rate": config["learning_rate"], "bf16": config["bf16"], "device": config["device"],
                     "loss": f"multi-scale EPE, weights {list(SCALE_WEIGHTS)}"},
        "command": command,
        "heldout_epe": state.get("heldout_epe", state.get("best_epe")),
        "heldout_set": f"generated from CamVid val frames, seeds from 1e9, at the training size {config['size']}",
        "measured_by_flow_epe": measured or [],
        "sha256": file_sha256(weights_path),
    }
    (folder / f"{WEIGHTS_NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    return weights_path
