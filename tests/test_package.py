import importlib.metadata

import torch

import dynbatch_ext


def test_version_matches_the_installed_distribution():
    assert dynbatch_ext.__version__ == importlib.metadata.version("dynbatch_ext")


def test_with_cuda_follows_the_torch_it_was_built_against():
    assert isinstance(dynbatch_ext.with_cuda(), bool)
    assert dynbatch_ext.with_cuda() == (torch.version.cuda is not None)


def test_public_names():
    for name in ("plan_batches", "padding_stats", "CostModel", "BucketBatchSampler", "COST_PRESETS"):
        assert hasattr(dynbatch_ext, name), name
