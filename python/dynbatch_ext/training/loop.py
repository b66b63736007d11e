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

from ..batching import CostModel
from ..datasets import PairData
from ..nn import ESIM
from ..sampler import BucketBatchSampler
from ..steps import micro_batch_weights
from . import checkpoint
from .baseline import FixedBatchSampler
from .calibration import calibrated_plan_cost
from .config import TrainConfig
from .data import load_pairs
from .metrics import MetricsLog, plot_run, read_log
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
class _World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def _join_world(device: str) -> tuple[_World, bool]:
    """Joins torch.distributed when launched by torchrun (WORLD_SIZE > 1)."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return _World(device=torch.device(device)), False
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    where = torch.device(f"cuda:{local}") if device == "cuda" else torch.device("cpu")
    return _World(dist.get_rank(), dist.get_world_size(), where), joined


def _all_sum(values: list[float], world: _World) -> list[float]:
    totals = torch.tensor(values, dtype=torch.float64)
    if world.size > 1:
        dist.all_reduce(totals)
    return totals.tolist()


def _make_sampler(config: TrainConfig, pairs: EncodedPairs, world: _World, cost, budget: float):
    if config.batching == "fixed":
        if world.size > 1:
            raise ValueError("batching='fixed' is the single-process baseline; use 'budget' "
                             "under torchrun")  # fmt: skip
        return FixedBatchSampler(len(pairs), config.batch_size, seed=config.seed)
    # Without a step target every micro-batch is its own step: a target of 1 sample with at
    # most 1 micro-batch per step.
    return BucketBatchSampler(
        pairs.lengths(), budget, cost=cost, max_batch_size=config.micro_batch_cap,
        seed=config.seed, num_replicas=world.size, rank=world.rank,
        step_target=config.step_target or 1.0, step_unit=config.step_unit,
        max_micro_batches=1 if config.step_target is None else config.max_micro_batches,
    )  # fmt: skip


def _validation_batches(config: TrainConfig, pairs: EncodedPairs, world: _World, cost, budget):
    if config.batching == "fixed":  # the baseline evaluates as it trains: fixed, padded batches
        return [list(range(i, min(i + config.batch_size, len(pairs))))
                for i in range(0, len(pairs), config.batch_size)]  # fmt: skip
    return BucketBatchSampler(
        pairs.lengths(), budget, cost=cost, max_batch_size=config.micro_batch_cap,
        shuffle=False, num_replicas=world.size, rank=world.rank,
    ).batches()  # fmt: skip


@torch.no_grad()
def evaluate(model: torch.nn.Module, pairs: EncodedPairs, batches, world: _World) -> tuple[float, float]:
    """(mean loss, accuracy) over the batches of every rank."""
    was_training = model.training
    model.eval()
    loss_sum = correct = count = 0.0
    for indices in batches:
        batch = pairs.collate(indices).to(world.device)
        logits = model(*batch.inputs())
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
        result = _train(config, data, world)
        if joined:  # leave together: gloo aborts a rank that tears down while a peer still works
            dist.barrier()
        return result
    finally:
        if joined:
            dist.destroy_process_group()


def _train(config: TrainConfig, data, world: _World) -> TrainResult:
    out = Path(config.out_dir)
    _check_out_dir(out, config.resume)
    out.mkdir(parents=True, exist_ok=True)  # every rank: each may write its own sample log
    saved = checkpoint.load(out / "checkpoint.pt") if config.resume else None
    if saved is not None and (changed := config.differences(saved["config"])):
        raise ValueError("--resume with other settings than the checkpoint's: " + "; ".join(changed))

    if data is None:
        train_pairs, valid_pairs, _ = load_pairs(config)
    else:
        train_pairs, valid_pairs = data
    texts = train_pairs.premises + train_pairs.hypotheses
    vocab = Vocabulary(saved["vocab"]) if saved else Vocabulary.build(texts)
    train_set = EncodedPairs(train_pairs, vocab, num_classes=3)
    valid_set = EncodedPairs(valid_pairs, vocab, num_classes=3)

    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = ESIM(len(vocab), config.embedding_dim, config.hidden_size, dropout=config.dropout,
                 fused=config.fused, lstm=config.lstm).to(world.device)  # fmt: skip
    # fused: one kernel for all parameters, ~5x faster than the default loop on the CPU here.
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    plan_cost, plan_budget, calibration = config.cost, config.budget, None
    if config.memory_limit is not None:
        if saved is not None:  # the budget the run started with, not a new calibration
            calibration = saved["calibration"]
            plan_cost, plan_budget = CostModel(*calibration["cost"]), calibration["budget"]
        else:
            plan_cost, plan_budget, calibration = calibrated_plan_cost(
                model, optimizer, train_set, len(vocab), config, world.device, world.main)
    sampler = _make_sampler(config, train_set, world, plan_cost, plan_budget)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=train_set.collate,
                        generator=torch.Generator())  # its own seed draws leave dropout's alone
    torch.manual_seed(config.seed + 1 + world.rank)  # dropout differs between ranks
    step, train_seconds, samples_seen = 0, 0.0, 0.0
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        sampler.load_state_dict(saved["sampler"])
        checkpoint.restore_rng(saved["rng"], world.rank)
        step, train_seconds, samples_seen = saved["step"], saved["train_seconds"], saved["samples_seen"]
    log = MetricsLog(out / "metrics.jsonl", enabled=world.main,
                     resume_step=step if saved else None, resume_epoch=sampler.epoch)  # fmt: skip
    if saved is None:
        log.write("run", config=config.to_dict(), world_size=world.size, vocab_size=len(vocab),
                  train_pairs=len(train_set), valid_pairs=len(valid_set),
                  calibration=calibration)  # fmt: skip
    net = model
    if world.size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    valid_batches = _validation_batches(config, valid_set, world, plan_cost, plan_budget)

    def save_checkpoint(batches_consumed: int) -> None:
        if not config.save_checkpoints:
            return
        rng = checkpoint.rng_states()  # a collective: every rank takes part
        if world.main:
            checkpoint.save(out / "checkpoint.pt", dict(
                config=config.to_dict(), vocab=vocab.tokens, model=model.state_dict(),
                optimizer=optimizer.state_dict(), sampler=sampler.state_dict(batches_consumed),
                rng=rng, step=step, train_seconds=train_seconds, samples_seen=samples_seen,
                calibration=calibration,
            ))  # fmt: skip

    valid_accuracy = None
    start_epoch = sampler.epoch
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)  # keeps a resumed epoch's position
        sizes = sampler.step_sizes()
        consumed = sampler.state_dict()["batches_done"]  # > 0 only in a resumed epoch
        done_steps = int(np.searchsorted(np.cumsum(sizes), consumed, side="right"))
        bar = tqdm(total=len(sizes), initial=done_steps, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="step", disable=not (config.progress and world.main), leave=False)  # fmt: skip
        seen_ids: list[int] = []
        model.train()
        for micro_batches in sampler.group_steps(loader):
            started = time.perf_counter()
            loss, correct, count, tokens, padded = _train_step(net, model, optimizer, micro_batches,
                                                               config, world)  # fmt: skip
            train_seconds += time.perf_counter() - started
            if config.log_sample_ids:
                seen_ids.extend(i for mb in micro_batches for i in mb.ids.tolist())
            step += 1
            consumed += len(micro_batches)
            loss, correct, count, tokens, padded = _all_sum([loss, correct, count, tokens, padded],
                                                            world)  # fmt: skip
            if not np.isfinite(loss):  # every rank sees the same sum, so all stop together
                raise FloatingPointError(
                    f"the training loss became {loss / count} at step {step} (epoch {epoch + 1}); "
                    "the weights are no longer finite. Lower --lr or --clip, or resume from the "
                    "last checkpoint"
                )
            samples_seen += count
            rate = samples_seen / train_seconds if train_seconds else 0.0
            log.write("step", step=step, epoch=epoch, loss=loss / count, accuracy=correct / count,
                      samples=count, tokens=int(tokens), padded_tokens=int(padded),
                      micro_batches=len(micro_batches),
                      seconds=train_seconds, samples_per_second=rate)  # fmt: skip
            bar.set_postfix(loss=f"{loss / count:.3f}", samples_s=f"{rate:.0f}")
            bar.update()
            stop = config.max_steps is not None and step >= config.max_steps
            if stop or step % config.checkpoint_every == 0:
                save_checkpoint(consumed)
            if stop:
                bar.close()
                return _finish(out, config, world, step, False, samples_seen, train_seconds, None)
        bar.close()
        if config.log_sample_ids:
            with (out / f"samples-rank{world.rank}.jsonl").open("a") as handle:
                handle.write(json.dumps({"epoch": epoch, "steps": len(sizes), "ids": seen_ids}) + "\n")
        valid_loss, valid_accuracy = evaluate(model, valid_set, valid_batches, world)
        log.write("epoch", epoch=epoch, step=step, valid_loss=valid_loss,
                  valid_accuracy=valid_accuracy, samples_per_second=samples_seen / train_seconds)  # fmt: skip
        if world.main and config.progress:
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: validation accuracy {valid_accuracy:.4f}, "
                       f"loss {valid_loss:.4f}, {samples_seen / train_seconds:.0f} samples/s")  # fmt: skip
        sampler.set_epoch(epoch + 1)
        save_checkpoint(0)
    return _finish(out, config, world, step, True, samples_seen, train_seconds, valid_accuracy)


def _train_step(net, model, optimizer, micro_batches: list[PairBatch], config, world):
    """Accumulates one step's micro-batches, each weighted by its share of the step's samples,
    then clips and steps. Returns this rank's (loss sum, correct, samples, real tokens, padded
    tokens)."""
    weights = micro_batch_weights([len(mb) for mb in micro_batches])
    loss_sum = correct = 0.0
    for k, (batch, weight) in enumerate(zip(micro_batches, weights)):
        batch = batch.to(world.device)
        last = k == len(micro_batches) - 1
        # DDP all-reduces gradients on every backward; only the step's last one needs it.
        sync = contextlib.nullcontext() if last or world.size == 1 else net.no_sync()
        with sync:
            logits = net(*batch.inputs())
            loss = F.cross_entropy(logits, batch.labels)
            (loss * weight).backward()
        loss_sum += loss.item() * len(batch)
        correct += (logits.argmax(1) == batch.labels).sum().item()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    real, padded = np.sum([mb.token_counts() for mb in micro_batches], axis=0)
    return loss_sum, correct, float(sum(len(mb) for mb in micro_batches)), float(real), float(padded)


def _finish(out, config, world, step, finished, samples_seen, train_seconds, valid_accuracy):
    history = []
    if world.main and (out / "metrics.jsonl").is_file():
        history = read_log(out / "metrics.jsonl")
        if any(r["kind"] == "step" for r in history):
            plot_run(history, out / "training.png")
    return TrainResult(
        out_dir=out, steps=step, finished=finished,
        samples_per_second=samples_seen / train_seconds if train_seconds else 0.0,
        valid_accuracy=valid_accuracy, history=history,
    )  # fmt: skip
