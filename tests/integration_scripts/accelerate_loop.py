"""Run under `accelerate launch` (2 CPU processes) by tests/test_integration_accelerate.py: a
plain accelerate loop over a BucketBatchSampler's batches, the loader prepared either with
prepare_loader ("helper") or with accelerator.prepare ("prepare"). Writes, per process, the
sample indices of every batch of each of 2 epochs (or the error the sampler raised)."""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from dynbatch_ext import BucketBatchSampler
from dynbatch_ext.integrations.accelerate import prepare_loader

out, mode = Path(sys.argv[1]), sys.argv[2]
accelerator = Accelerator(cpu=True)
lengths = np.random.default_rng(0).integers(1, 40, 300)
dataset = [(i, torch.ones(int(n))) for i, n in enumerate(lengths)]


def pad(rows):
    ids = torch.tensor([i for i, _ in rows])
    return ids, torch.nn.utils.rnn.pad_sequence([x for _, x in rows], batch_first=True)


sampler = BucketBatchSampler(lengths, budget=400, cost="tokens")
loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=pad)
model = torch.nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
model, optimizer = accelerator.prepare(model, optimizer)
loader = prepare_loader(accelerator, loader) if mode == "helper" else accelerator.prepare(loader)
epochs, error = [], None
try:
    for epoch in range(2):
        sampler.set_epoch(epoch)
        seen = []
        for ids, x in loader:
            loss = model(x.sum(1, keepdim=True)).pow(2).mean()
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            seen.append(ids.tolist())
        epochs.append(seen)
except ValueError as raised:
    error = str(raised)
(out / f"rank{accelerator.process_index}.json").write_text(json.dumps({"epochs": epochs, "error": error}))
accelerator.wait_for_everyone()
