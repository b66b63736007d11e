"""The dynbatch_ext op namespace: every op registered is listed in one place (`ops.NAMESPACE_OPS`),
and every fused op passes torch.library.opcheck (schema, fake kernel, autograd registration)."""
from __future__ import annotations

import pytest
import torch
from op_cases import DEVICES, OP_CASES, to_device

from dynbatch_ext.ops import NAMESPACE_OPS


def registered_ops() -> set[str]:
    names = torch._C._dispatch_get_all_op_names()  # private, but only a test depends on it
    return {name.split("::")[1].split(".")[0] for name in names if name.startswith("dynbatch_ext::")}


def test_every_op_of_the_namespace_is_listed_in_ops():
    assert registered_ops() == set(NAMESPACE_OPS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", OP_CASES)
def test_opcheck(case, device):
    for sample in case.samples():
        torch.library.opcheck(case.op, to_device(device, *sample))
