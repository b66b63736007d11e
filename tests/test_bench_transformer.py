"""The bench's transformer section: the seed's loader as its code has it, the locally built
tokenizer and data, and the section end to end in tiny mode on the synthetic stand-in."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("datasets")

from dynbatch_ext.bench import reviews  # noqa: E402
from dynbatch_ext.bench.sections import transformer  # noqa: E402
from dynbatch_ext.bench.seed_experiment_loader import seed_dynamic_batches  # noqa: E402
from dynbatch_ext.cli import main  # noqa: E402


def _dataset_for_dbl(lengths, controller, order):
    """DatasetForDBL._update_data_index as its seed document has it, over samples in `order`."""
    index, batch, start_idx, max_length = [], 0, 0, 0
    for idx, sample_len in enumerate(int(lengths[k]) for k in order):
        max_length = sample_len if sample_len > max_length else max_length
        batch_size = int(controller / max_length)
        batch += 1
        if batch > batch_size:
            index.append((start_idx, idx))
            start_idx = idx
            max_length = sample_len
            batch_size = int(controller / max_length**2)
            batch = 0
    index.append((start_idx, len(order)))
    return index


def test_the_seed_loader_is_dataset_for_dbl_with_its_quirks():
    lengths = np.random.default_rng(0).integers(2, 300, size=500)
    controller = 2048
    batches = seed_dynamic_batches(lengths, controller, seed=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))  # every review once
    order = np.random.default_rng(0).permutation(500)  # the shuffle it walks
    runs = [order[a:b].tolist() for a, b in _dataset_for_dbl(lengths, controller, order)]
    assert sorted(b.tolist() for b in batches) == sorted(runs)  # its runs, in shuffled order
    # Its quirks: the limit is linear in the batch's longest length, and the counter's
    # off-by-one lets a batch hold one sample past it.
    limits = [int(controller / int(lengths[b].max())) for b in batches]
    assert all(len(b) <= limit + 1 for b, limit in zip(batches, limits))
    assert any(len(b) == limit + 1 for b, limit in zip(batches, limits))
    assert [b.tolist() for b in seed_dynamic_batches(lengths, controller, seed=1)] != [b.tolist() for b in batches]


def test_the_tokenizer_gives_each_chinese_character_a_token():
    texts = ["房间很大，床很舒服", "房间很小", "床很大 wifi"] * 2
    tokenizer = reviews.character_tokenizer(texts, max_tokens=16)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("房间很大wifi")["input_ids"])
    assert tokens == ["[CLS]", "房", "间", "很", "大", "wifi", "[SEP]"]
    assert tokenizer.convert_ids_to_tokens(tokenizer("猫")["input_ids"]) == ["[CLS]", "[UNK]", "[SEP]"]
    data = reviews.tokenized(tokenizer, ["房" * 40, ""], np.array([1, 0]), max_tokens=16)
    assert data["length"] == [16, 2]  # cut at max_tokens; the empty review keeps its specials
    assert len(data["input_ids"][0]) == 16


def test_reviews_are_read_with_their_labels_and_a_bad_label_is_named(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text('1,"好,很好"\n0,差\n1,\n', encoding="utf-8")
    data = reviews.read_reviews(good)
    assert data.texts == ["好,很好", "差", ""] and data.labels.tolist() == [1, 0, 1]
    bad = tmp_path / "bad.csv"
    bad.write_text("1,好\n2,差\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 2 has label '2'"):
        reviews.read_reviews(bad)


def test_without_the_data_the_stand_in_is_long_tailed_and_learnable():
    data = reviews.load_reviews(None, limit=None, seed=0)
    lengths = np.array([len(t) for t in data.texts])
    assert data.source == "synthetic long-tailed reviews" and len(data.texts) == 7766
    assert np.percentile(lengths, 99) > 4 * np.median(lengths)  # a long tail
    assert 0.6 < data.labels.mean() < 0.75
    # The label shows in which characters a review favours.
    hint = np.array([sum(ch < chr(0x4E00 + 20) for ch in t) - sum(chr(0x4E00 + 20) <= ch < chr(0x4E00 + 40) for ch in t)
                     for t in data.texts])  # fmt: skip
    long_enough = lengths >= 30
    assert ((hint[long_enough] > 0) == (data.labels[long_enough] == 1)).mean() > 0.9


def test_the_section_runs_on_the_stand_in_and_reports_every_figure(tmp_path, capsys):
    assert main(["bench", "--tiny", "--sections", "transformer", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    section = json.loads((tmp_path / "out" / "results.json").read_text())["transformer"]
    assert section["data"] == "synthetic long-tailed reviews"
    assert set(section["runs"]) == set(transformer.RUNS)
    budget = section["budget"]
    for name, run in section["runs"].items():
        assert sum(run["samples_per_step_all"]) == section["train_reviews"] * section["epochs"]
        assert len(run["loss_per_step"]) == run["steps"] == len(run["seconds_at_step_end"])
        assert run["samples_per_second"] > 0 and 0 <= run["accuracy"] <= 1
        peak = run["peak_memory_bytes"]
        assert peak["max"] >= peak["median"] >= peak["min"] > 0
    ours = section["runs"][transformer.OURS]
    assert ours["over_budget"] == 0 and ours["cost_max_over_budget"] <= 1
    assert ours["samples_per_step"]["max"] <= 2 * transformer.SEED_BATCH
    assert section["runs"][transformer.SEED]["cost_max_over_budget"] > 1
    assert budget == transformer.budget_for(section["model"]["max_tokens"])
    assert set(section["targets"]) == {"samples/s (c)/(a)", "micro-batches of (c) over the budget"}
    assert (tmp_path / "out" / "transformer.png").stat().st_size > 10_000
    assert "Transformer training (the seed experiment)" in capsys.readouterr().out


def test_the_section_needs_the_hf_extra_and_says_so_before_measuring(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def without_transformers(name, *args, **kwargs):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_transformers)
    assert main(["bench", "--tiny", "--out", str(tmp_path)]) != 0
    assert "pip install 'dynbatch_ext[hf]'" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()
