"""Run under torchrun (2 ranks, gloo, CPU) by tests/test_stream_dataset.py: each rank streams its
part through BucketingIterableDataset with 2 workers, and trains a DDP model on its batches until
every rank has ended (dummy steps on the rank that ends first), through accumulate_step (whose
micro_batch_weights all-reduces the step total); with a second argument "steps", on optimizer
steps of 20 samples. Writes what each rank trained, a batch per micro-batch."""
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from dynbatch_ext.batching.loss_weights import accumulate_step
from dynbatch_ext.batching.rank_steps import until_every_rank_ends
from dynbatch_ext.batching.stream_dataset import BucketingIterableDataset

# Readers are rank * 2 + worker and read positions modulo 4: rank 0 gets the long samples, so it
# has many more batches than rank 1.
LENGTHS = np.where(np.arange(2000) % 4 < 2, 300, 10)


def length_of(sample):
    return int(LENGTHS[sample])


dist.init_process_group("gloo")
out = Path(sys.argv[1])
in_steps = sys.argv[2:] == ["steps"]
data = BucketingIterableDataset(list(range(len(LENGTHS))), length_of, 8 * 300**2, buffer_size=300,
                                **(dict(step_target=20) if in_steps else {}))  # fmt: skip
loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(1, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
trained, dummies, steps = [], 0, 0


def inputs_of(batch):
    return torch.tensor(LENGTHS[batch], dtype=torch.float32)[:, None]


for item in until_every_rank_ends(loader):
    # A batch is a step of one micro-batch; None, once this rank has ended, a step of one
    # micro-batch of weight 0, which keeps the all-reduces matched.
    step = [[0]] if item is None else item if in_steps else [item]
    counts = [0] if item is None else [len(b) for b in step]
    dummies += item is None
    steps += 1
    trained += [] if item is None else [[int(s) for s in b] for b in step]
    optimizer.zero_grad()
    accumulate_step(step, counts, lambda b: model(inputs_of(b)).mean(), torch.Tensor.backward,
                    model.no_sync)  # fmt: skip
    optimizer.step()
(out / f"rank{dist.get_rank()}.json").write_text(json.dumps({"batches": trained, "dummies": dummies,
                                                            "steps": steps}))  # fmt: skip
dist.barrier()
dist.destroy_process_group()
