"""torch.export of the fused ops and of ESIM, with dynamic batch and length dimensions: the
exported program gives eager's outputs on other shapes, and still refuses bad lengths."""
from __future__ import annotations

import pytest
import torch
from op_cases import OP_CASES, random_lengths
from torch.export import Dim, export

from dynbatch_ext.nn import ESIM

B, LA, LB = Dim("B"), Dim("La"), Dim("Lb")


class Op(torch.nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, *args):
        return self.op(*args)


@pytest.mark.parametrize("case", OP_CASES)
def test_op_exports_with_dynamic_batch_and_lengths(case):
    example = case.sample(random_lengths(5, 6, 4, seed=1), dim=8, dtype=torch.float32)
    # A batch dimension shared by every argument; a length dimension of its own per sequence.
    dynamic = tuple({0: B, 1: Dim(f"L{k}")} if t.is_floating_point() else {0: B}
                    for k, t in enumerate(example))  # fmt: skip
    module = Op(case.op)
    program = export(module, tuple(example), dynamic_shapes=(dynamic,))
    assert f"dynbatch_ext.{case.name}.default" in {str(node.target) for node in program.graph.nodes}
    other = case.sample(random_lengths(9, 13, 2, seed=2), dim=8, dtype=torch.float32)
    got, want = program.module()(*other), module(*other)
    for g, w in zip(*(o if isinstance(o, tuple) else (o,) for o in (got, want))):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


@pytest.mark.parametrize("lstm", ["auto", "flipped", "padded"])
def test_esim_exports_with_dynamic_batch_and_lengths(lstm):
    torch.manual_seed(0)
    model = ESIM(50, embedding_dim=8, hidden_size=8, lstm=lstm).eval()
    premise, hypothesis = torch.randint(1, 50, (4, 7)), torch.randint(1, 50, (4, 5))
    len_p, len_h = torch.tensor([7, 3, 0, 5]), torch.tensor([5, 5, 2, 0])
    program = export(model, (premise, len_p, hypothesis, len_h),
                     dynamic_shapes=({0: B, 1: LA}, {0: B}, {0: B, 1: LB}, {0: B}))  # fmt: skip
    other = (torch.randint(1, 50, (3, 11)), torch.tensor([11, 1, 4]), torch.randint(1, 50, (3, 2)),
             torch.tensor([2, 0, 1]))  # fmt: skip
    torch.testing.assert_close(program.module()(*other), model(*other), rtol=1e-5, atol=1e-6)
    for bad in (torch.tensor([12, 1, 4]), torch.tensor([-1, 1, 4])):
        with pytest.raises(ValueError, match="premise_lengths must lie in"):
            model(other[0], bad, *other[2:])
        with pytest.raises(RuntimeError, match="Runtime assertion failed"):
            program.module()(other[0], bad, *other[2:])


def test_packed_lstm_says_why_it_does_not_export():
    model = ESIM(50, embedding_dim=8, hidden_size=8, lstm="packed").eval()
    example = (torch.randint(1, 50, (2, 4)), torch.tensor([4, 2]), torch.randint(1, 50, (2, 3)),
               torch.tensor([3, 1]))  # fmt: skip
    with pytest.raises(Exception, match="lstm='packed' cannot be exported.*lstm='flipped'"):
        export(model, example)
