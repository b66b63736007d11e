"""train-esim's loop: budgeted micro-batches, constant effective batch, exact loss weights."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..batching import BucketBatchSampler, CostModel
from ..batching.loss_weights import accumulate_step
from ..corpora import PairData
from ..nn import ESIM
from . import checkpoint
from .baseline import FixedBatchSampler
from .config import TrainConfig
from .data import data_sha256, load_pairs
from .memory_limit import calibrated_plan_cost
from .metrics import MetricsLog, plot_run, read_log, run_pyplot
from .precision import autocast_context, check_autocast
from .text import EncodedPairs, PairBatch, Vocabulary


@dataclasses.dataclass
class TrainResult:
    out_dir: Path
    steps: int
    finished: bool  # False when max_steps stopped the run early
    samples_per_second: float  # training samples (all ranks) per second of training steps
    valid_accuracy: float | None  # after the last epoch run
    history: list[dict]  # the metrics log's records


@dataclasses.dataclass
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def _join_world(device: str) -> tuple[World, bool]:
    """Joins torch.distributed when launched by torchrun (WORLD_SIZE > 1)."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=torch.device(device)), False
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    where = torch.device(f"cuda:{local}") if device == "cuda" else torch.device("cpu")
    return World(dist.get_rank(), dist.get_world_size(), where), joined


def _all_sum(values: list[float], world: World) -> list[float]:
    totals = torch.tensor(values, dtype=torch.float64)
    if world.size > 1:
        dist.all_reduce(totals)
    return totals.tolist()


def _make_sampler(config: TrainConfig, pairs: EncodedPairs, world: World, cost, budget: float):
    if config.batching == "fixed":
        if world.size > 1:
            raise ValueError("batching='fixed' is the single-process baseline; use 'budget' "
                             "under torchrun")  # fmt: skip
        return FixedBatchSampler(len(pairs), config.batch_size, seed=config.seed)
    # Without a step target every micro-batch is its own step: sorted steps of 1 sample with at
    # most 1 micro-batch each.
    if config.step_target is None:
        steps = dict(step_target=1.0, max_micro_batches=1, composition="sorted")
    else:
        steps = dict(step_target=config.step_target, step_unit=config.step_unit,
                     max_micro_batches=config.max_micro_batches, composition=config.composition,
                     pool_steps=config.pool_steps)  # fmt: skip
    return BucketBatchSampler(
        pairs.lengths(), budget, cost=cost, max_batch_size=config.micro_batch_cap,
        seed=config.seed, num_replicas=world.size, rank=world.rank, **steps,
    )  # fmt: skip


def _validation_batches(config: TrainConfig, pairs: EncodedPairs, world: World, cost, budget):
    if config.batching == "fixed":  # the baseline evaluates as it trains: fixed, padded batches
        return [list(range(i, min(i + config.batch_size, len(pairs))))
                for i in range(0, len(pairs), config.batch_size)]  # fmt: skip
    return BucketBatchSampler(
        pairs.lengths(), budget, cost=cost, max_batch_size=config.micro_batch_cap,
        shuffle=False, num_replicas=world.size, rank=world.rank,
    ).batches()  # fmt: skip


@torch.no_grad()
def evaluate(model: torch.nn.Module, pairs: EncodedPairs, batches, world: World,
             autocast: str | None = None) -> tuple[float, float]:  # fmt: skip
    """(mean loss, accuracy) over the batches of every rank, under autocast as trained."""
    was_training = model.training
    model.eval()
    loss_sum = correct = count = 0.0
    for indices in batches:
        batch = pairs.collate(indices).to(world.device)
        with autocast_context(autocast, world.device):
            logits = model(*batch.inputs()).float()
        loss_sum += F.cross_entropy(logits, batch.labels, reduction="sum").item()
        correct += (logits.argmax(1) == batch.labels).sum().item()
        count += len(batch)
    model.train(was_training)
    loss_sum, correct, count = _all_sum([loss_sum, correct, count], world)
    return loss_sum / count, correct / count


def _check_out_dir(out: Path, resume: bool) -> None:
    if not resume and (out / "checkpoint.pt").exists():
        raise ValueError(f"{out} already holds a run: pass --resume to continue it, or choose "
                         "another --out")  # fmt: skip


def train(config: TrainConfig, data: tuple[PairData, PairData] | None = None) -> TrainResult:
    """Trains ESIM as `config` says, writing metrics.jsonl, training.png and checkpoint.pt into
    `config.out_dir`. `data` = (train, valid) pairs overrides the config's files."""
    world, joined = _join_world(config.device)
    try:
        check_autocast(config.autocast, world.device)
        result = _train(config, data, world)
        if joined:  # leave together: gloo aborts a rank that tears down while a peer still works
            dist.barrier()
        return result
    finally:
        if joined:
            dist.destroy_process_group()


@dataclasses.dataclass
class _Progress:
    """Where a run stands: what a checkpoint restores besides the model, optimizer and sampler."""

    step: int = 0
    train_seconds: float = 0.0
    samples_seen: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.train_seconds if self.train_seconds else 0.0


class TrainingRun:
    """One train-esim run: set up (or restored from the checkpoint) in __init__, then trained an
    epoch at a time. Every draw from torch's RNG happens in the same order whether the run is
    fresh or resumed, so that a resumed run ends with the same weights."""

    def __init__(self, config: TrainConfig, data, world: World):
        self.config, self.world = config, world
        if config.plot and world.main:  # fail now, not after the training, without matplotlib
            run_pyplot()
        self.out = Path(config.out_dir)
        _check_out_dir(self.out, config.resume)
        self.out.mkdir(parents=True, exist_ok=True)  # every rank: each may write its sample log
        saved = checkpoint.load(self.out / "checkpoint.pt") if config.resume else None
        if saved is not None and (changed := config.differences(saved["config"])):
            raise ValueError("--resume with other settings than the checkpoint's: " + "; ".join(changed))
        train_pairs, valid_pairs = data if data is not None else load_pairs(config)[:2]
        self.data_sha256 = data_sha256(train_pairs)
        if saved is not None and saved["data_sha256"] != self.data_sha256:
            raise ValueError(f"--resume: the training pairs are not those the run in {self.out} "
                             "started with (their content differs from the checkpoint's); resume "
                             "with the same data, or start a new run in another --out")  # fmt: skip
        texts = train_pairs.premises + train_pairs.hypotheses
        self.vocab = Vocabulary(saved["vocab"]) if saved else Vocabulary.build(texts)
        self.train_set = EncodedPairs(train_pairs, self.vocab)
        self.valid_set = EncodedPairs(valid_pairs, self.vocab)

        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = ESIM(len(self.vocab), config.embedding_dim, config.hidden_size,
                          dropout=config.dropout, fused=config.fused,
                          lstm=config.lstm).to(world.device)  # fmt: skip
        # fused: one kernel for all parameters, ~5x faster than the default loop on the CPU here.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=True)
        cost, budget, self.calibration = self._plan_cost(saved)
        self.sampler = _make_sampler(config, self.train_set, world, cost, budget)
        self.loader = DataLoader(self.train_set, batch_sampler=self.sampler,
                                 collate_fn=self.train_set.collate,
                                 generator=torch.Generator())  # its own seed draws leave dropout's alone
        torch.manual_seed(config.seed + 1 + world.rank)  # dropout differs between ranks
        self.progress = _Progress()
        if saved is not None:
            self._restore(saved)
        self.log = MetricsLog(self.out / "metrics.jsonl", enabled=world.main,
                              resume_step=self.progress.step if saved else None,
                              resume_epoch=self.sampler.epoch)  # fmt: skip
        if saved is None:
            self.log.write("run", config=config.to_dict(), world_size=world.size,
                           vocab_size=len(self.vocab), train_pairs=len(self.train_set),
                           valid_pairs=len(self.valid_set), calibration=self.calibration)  # fmt: skip
        self.net = self.model
        if world.size > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        self.valid_batches = _validation_batches(config, self.valid_set, world, cost, budget)

    def _restore(self, saved: dict) -> None:
        """Model, optimizer, sampler, RNG and progress from a checked checkpoint; a state that
        does not fit them is a ValueError naming the file."""
        path = self.out / "checkpoint.pt"
        try:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.sampler.load_state_dict(saved["sampler"])
            checkpoint.restore_rng(saved["rng"], self.world.rank)
        except (RuntimeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: the checkpoint does not fit this run ({error}); "
                             f"{checkpoint.WHAT_TO_DO}") from None  # fmt: skip
        self.progress = _Progress(saved["step"], saved["train_seconds"], saved["samples_seen"])
        if self.config.max_steps is not None and self.progress.step >= self.config.max_steps:
            raise ValueError(f"--max-steps {self.config.max_steps}: the run in {self.out} is "
                             f"already at step {self.progress.step}; pass a larger --max-steps "
                             "(or none) to train on")  # fmt: skip

    def _plan_cost(self, saved):
        """(cost, budget, calibration record): the config's, or calibrated to --memory-limit (a
        resumed run keeps the budget it started with)."""
        config = self.config
        if config.memory_limit is None:
            return config.cost, config.budget, None
        if saved is not None:
            calibration = saved["calibration"]
            return CostModel(*calibration["cost"]), calibration["budget"], calibration
        return calibrated_plan_cost(self.model, self.optimizer, self.train_set, len(self.vocab),
                                    config, self.world.device, self.world.main)  # fmt: skip

    def save_checkpoint(self, batches_consumed: int) -> None:
        if not self.config.save_checkpoints:
            return
        rng = checkpoint.rng_states()  # a collective: every rank takes part
        if self.world.main:
            checkpoint.save(self.out / "checkpoint.pt", dict(
                config=self.config.to_dict(), vocab=self.vocab.tokens,
                data_sha256=self.data_sha256,
                model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                sampler=self.sampler.state_dict(batches_consumed), rng=rng,
                **dataclasses.asdict(self.progress), calibration=self.calibration,
            ))  # fmt: skip

    def steps(self):
        """The steps of the sampler's current epoch (set by train_epoch; 0 when fresh), each a
        list of micro-batches."""
        return self.sampler.group_steps(self.loader)

    def train_step(self, micro_batches: list[PairBatch]) -> tuple[float, float, float, float, float]:
        """Trains one step; this rank's (loss sum, correct, samples, real tokens, padded tokens)."""
        return _train_step(self.net, self.model, self.optimizer, micro_batches, self.config, self.world)

    def train_epoch(self, epoch: int) -> bool:
        """Trains what is left of `epoch`; False when max_steps stopped the run inside it."""
        config, world, progress = self.config, self.world, self.progress
        self.sampler.set_epoch(epoch)  # keeps a resumed epoch's position
        sizes = self.sampler.micro_batches_per_step()
        consumed = self.sampler.state_dict()["batches_done"]  # > 0 only in a resumed epoch
        done_steps = int(np.searchsorted(np.cumsum(sizes), consumed, side="right"))
        bar = tqdm(total=len(sizes), initial=done_steps, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="step", disable=not (config.progress and world.main), leave=False)  # fmt: skip
        # A resumed epoch's ids start with those of the batches trained before the stop.
        seen_ids = [i for batch in self.sampler.batches()[:consumed] for i in batch.tolist()
                    ] if config.log_sample_ids else []  # fmt: skip
        self.model.train()
        for micro_batches in self.steps():
            started = time.perf_counter()
            sums = self.train_step(micro_batches)
            progress.train_seconds += time.perf_counter() - started
            if config.log_sample_ids:
                seen_ids.extend(i for mb in micro_batches for i in mb.ids.tolist())
            progress.step += 1
            consumed += len(micro_batches)
            loss, correct, count, tokens, padded = _all_sum(list(sums), world)
            if not np.isfinite(loss):  # every rank sees the same sum, so all stop together
                raise FloatingPointError(
                    f"the training loss became {loss / count} at step {progress.step} (epoch "
                    f"{epoch + 1}); the weights are no longer finite. Lower --lr or --clip, or "
                    "resume from the last checkpoint"
                )
            progress.samples_seen += count
            rate = progress.samples_per_second
            self.log.write("step", step=progress.step, epoch=epoch, loss=loss / count,
                           accuracy=correct / count, samples=count, tokens=int(tokens),
                           padded_tokens=int(padded), micro_batches=len(micro_batches),
                           seconds=progress.train_seconds, samples_per_second=rate)  # fmt: skip
            bar.set_postfix(loss=f"{loss / count:.3f}", samples_s=f"{rate:.0f}")
            bar.update()
            stop = config.max_steps is not None and progress.step >= config.max_steps
            if stop or progress.step % config.checkpoint_every == 0:
                self.save_checkpoint(consumed)
            if stop:
                bar.close()
                return False
        bar.close()
        if config.log_sample_ids:
            with (self.out / f"samples-rank{world.rank}.jsonl").open("a") as handle:
                handle.write(json.dumps({"epoch": epoch, "steps": len(sizes), "ids": seen_ids}) + "\n")
        return True

    def validate(self, epoch: int) -> float:
        """Evaluates the held-out pairs, logs and reports; returns the accuracy."""
        valid_loss, valid_accuracy = evaluate(self.model, self.valid_set, self.valid_batches,
                                              self.world, self.config.autocast)  # fmt: skip
        rate = self.progress.samples_per_second
        self.log.write("epoch", epoch=epoch, step=self.progress.step, valid_loss=valid_loss,
                       valid_accuracy=valid_accuracy, samples_per_second=rate)  # fmt: skip
        if self.world.main and self.config.progress:
            tqdm.write(f"epoch {epoch + 1}/{self.config.epochs}: validation accuracy "
                       f"{valid_accuracy:.4f}, loss {valid_loss:.4f}, {rate:.0f} samples/s")  # fmt: skip
        return valid_accuracy

    def finish(self, finished: bool, valid_accuracy: float | None) -> TrainResult:
        history = []
        if self.world.main and (self.out / "metrics.jsonl").is_file():
            history = read_log(self.out / "metrics.jsonl")
            if self.config.plot and any(r["kind"] == "step" for r in history):
                plot_run(history, self.out / "training.png")
        return TrainResult(out_dir=self.out, steps=self.progress.step, finished=finished,
                           samples_per_second=self.progress.samples_per_second,
                           valid_accuracy=valid_accuracy, history=history)  # fmt: skip


def _train(config: TrainConfig, data, world: World) -> TrainResult:
    run = TrainingRun(config, data, world)
    valid_accuracy = None
    for epoch in range(run.sampler.epoch, config.epochs):
        if not run.train_epoch(epoch):
            return run.finish(False, None)
        valid_accuracy = run.validate(epoch)
        run.sampler.set_epoch(epoch + 1)
        run.save_checkpoint(0)
    return run.finish(True, valid_accuracy)


def _train_step(net, model, optimizer, micro_batches: list[PairBatch], config, world):
    """Accumulates one step's micro-batches, each weighted by its share of the step's samples,
    then clips and steps. Returns this rank's (loss sum, correct, samples, real tokens, padded
    tokens)."""
    counts = [len(mb) for mb in micro_batches]
    correct = 0.0

    def micro_batch_loss(batch: PairBatch) -> torch.Tensor:
        nonlocal correct
        batch = batch.to(world.device)
        with autocast_context(config.autocast, world.device):
            logits = net(*batch.inputs())
            loss = F.cross_entropy(logits, batch.labels)
        correct += (logits.argmax(1) == batch.labels).sum().item()
        return loss

    # DDP all-reduces gradients on every backward; only the step's last one needs it.
    no_sync = net.no_sync if world.size > 1 else contextlib.nullcontext
    mean = accumulate_step(micro_batches, counts, micro_batch_loss, torch.Tensor.backward, no_sync)
    loss_sum = mean.item() * sum(counts)
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    real, padded = np.sum([mb.token_counts() for mb in micro_batches], axis=0)
    return loss_sum, correct, float(sum(counts)), float(real), float(padded)
