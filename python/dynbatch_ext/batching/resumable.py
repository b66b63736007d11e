"""The epoch, resume and step bookkeeping that every batch sampler of this package shares."""
from __future__ import annotations

import sys
from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

from .checks import check_int, settings_differences


class ResumableBatchSampler(Sampler[list[int]]):
    """A batch sampler whose epoch is a fixed list of batches, grouped into optimizer steps.

    Subclasses give `batches()` (this rank's batches of `self.epoch`), `_step_layout()` (the
    micro-batches in each step, or None when the sampler has no steps) and `_settings()`: every
    setting that shapes the plan, as plain data, which a saved state must match to be resumed.
    """

    def __init__(self):
        self.epoch = 0
        self._resume_at = 0  # batches of self.epoch to pass over on the next __iter__
        self._yielded = 0  # batches of self.epoch handed out so far
        self._started_at = 0  # where the latest iteration began

    def batches(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _step_layout(self) -> list[int] | None:
        raise NotImplementedError

    def _settings(self) -> dict:
        raise NotImplementedError

    def micro_batches_per_step(self) -> list[int]:
        """Micro-batches in each optimizer step of the current epoch (the same on every rank)."""
        sizes = self._step_layout()
        if sizes is None:
            raise ValueError("this sampler has no steps: create it with step_target=...")
        return sizes

    def steps(self) -> list[list[np.ndarray]]:
        """This rank's micro-batches of the current epoch, grouped by optimizer step."""
        batches, bounds = self.batches(), np.cumsum([0, *self.micro_batches_per_step()])
        return [batches[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def group_steps(self, loader) -> Iterator[list]:
        """Iterates `loader` (built on this sampler) and yields one list of micro-batches per
        optimizer step, starting where a resumed epoch starts."""
        sizes = self.micro_batches_per_step()
        stream = iter(loader)  # sets the start: a resumed epoch begins part-way
        first = int(np.searchsorted(np.cumsum([0, *sizes]), self._started_at))
        for size in sizes[first:]:
            yield [next(stream) for _ in range(size)]

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch whose order the next iteration follows (as DistributedSampler)."""
        epoch = check_int("epoch", epoch, 0)
        if epoch != self.epoch:
            self.epoch, self._resume_at, self._yielded = epoch, 0, 0

    def __len__(self) -> int:
        return len(self.batches())

    def __iter__(self) -> Iterator[list[int]]:
        # Not a generator itself, so the position is right from iter() on. The resume point is
        # cleared only once batches flow: DataLoader calls iter() twice before drawing any.
        _refuse_resharding(self)
        start = self._resume_at
        self._yielded = self._started_at = start
        return self._generate(self.batches()[start:])

    def _generate(self, batches: list[np.ndarray]) -> Iterator[list[int]]:
        self._resume_at = 0
        for batch in batches:
            self._yielded += 1
            yield batch.tolist()

    def state_dict(self, batches_consumed: int | None = None) -> dict:
        """Where this epoch stands, to resume from with `load_state_dict`.

        By default it counts the batches this sampler has handed out. A DataLoader with workers
        draws a few batches ahead of what the training loop has used, so pass the number of
        batches the loop really consumed this epoch (`batches_consumed`) to lose none of them.
        """
        done = self._yielded if batches_consumed is None else batches_consumed
        done = check_int("batches_consumed", done, 0, len(self))
        return {"epoch": self.epoch, "batches_done": done, **self._settings()}

    def check_state(self, state) -> None:
        """Refuses a state that this sampler cannot resume: not a state_dict(), or saved by a
        sampler that would plan other batches (other lengths, options, step layout or world
        size), naming what differs: resuming it would skip some samples and repeat others."""
        if not isinstance(state, dict):
            raise ValueError(f"a sampler state is a dict (from state_dict()), got {type(state).__name__}")
        missing = sorted({"epoch", "batches_done"} - set(state))
        if missing:
            raise ValueError(f"this sampler state lacks {missing}: it was not made by "
                             "state_dict() of this sampler")  # fmt: skip
        differences = settings_differences(state, self._settings())
        if differences:
            raise ValueError(
                "this sampler state was saved with other settings, and resuming under other "
                "settings would not give the remaining batches (some samples would be skipped, "
                "others repeated): " + "; ".join(differences)
            )
        check_int("epoch", state["epoch"], 0)

    def load_state_dict(self, state: dict) -> None:
        """Resumes: the next iteration yields exactly the batches of `state` not yet done.
        Refuses a state this sampler cannot resume (see `check_state`)."""
        self.check_state(state)
        self.set_epoch(state["epoch"])
        done = check_int("batches_done", state["batches_done"], 0, len(self))
        layout = self._step_layout()
        if layout is not None and done not in np.cumsum([0, *layout]):
            raise ValueError(
                f"batches_done={done} falls inside an optimizer step; save the state between "
                "steps (after optimizer.step()) to resume with whole steps"
            )
        self._resume_at = self._yielded = done


def _refuse_resharding(sampler) -> None:
    """Refuses to be iterated by accelerate's BatchSamplerShard over several processes (what
    `accelerator.prepare(loader)` makes): it would split this rank's batches again (losing
    samples) or pad them with repeats. The shard is the caller of __iter__; it is looked up by
    name, so that accelerate need not be imported."""
    frame = sys._getframe(2)  # __iter__'s caller: the iterating generator, past enumerate()
    for _ in range(3):
        if frame is None:
            return
        owner = frame.f_locals.get("self")
        if type(owner).__name__ == "BatchSamplerShard" and getattr(owner, "batch_sampler", None) is sampler:
            if getattr(owner, "num_processes", 1) > 1:
                raise ValueError(
                    "accelerator.prepare(loader) shards a loader's batches across processes, and "
                    f"this {type(sampler).__name__} already gives each process its own: the "
                    "batches would be split again (samples lost) or padded with repeats. Prepare "
                    "the loader with dynbatch_ext.integrations.accelerate.prepare_loader("
                    "accelerator, loader) instead (the model and optimizer with "
                    "accelerator.prepare as usual)"
                )
            return
        frame = frame.f_back
