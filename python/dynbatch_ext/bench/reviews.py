"""The seed experiment's data and model, built locally: ChnSentiCorp hotel reviews (or a
long-tailed synthetic stand-in), a character-level tokenizer made from the training text, and a
small BERT classifier from a random configuration. Nothing is downloaded.

Needs the `hf` extra (transformers brings `tokenizers`; datasets).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .. import corpora

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


@dataclasses.dataclass
class Reviews:
    texts: list[str]
    labels: np.ndarray  # int64 (N,): 1 positive, 0 negative
    source: str


def read_reviews(path: Path) -> Reviews:
    """ChnSentiCorp's `label,review` CSV."""
    labels, texts = corpora.read_texts(path, column=0), corpora.read_texts(path, column=-1)
    bad = next((k for k, label in enumerate(labels) if label not in ("0", "1")), None)
    if bad is not None:
        raise ValueError(f"{path}: row {bad + 1} has label {labels[bad]!r}; labels are 0 or 1")
    return Reviews(texts, np.array([int(label) for label in labels]), path.name)


def synthetic_reviews(n: int, seed: int = 0) -> Reviews:
    """Long-tailed reviews over 300 CJK characters whose label shows in which characters they
    favour, with ChnSentiCorp's 2:1 positive share (for runs without ../shared/data)."""
    rng = np.random.default_rng(seed)
    lengths = corpora.synthetic_lengths(n, seed=seed, low=0, high=3000)
    labels = (rng.random(n) < 0.68).astype(np.int64)
    alphabet = np.array([chr(0x4E00 + k) for k in range(300)])
    favoured = {1: np.arange(0, 20), 0: np.arange(20, 40)}
    texts = []
    for length, label in zip(lengths, labels):
        chars = rng.integers(0, len(alphabet), size=length)
        hints = rng.random(length) < 0.15
        chars[hints] = rng.choice(favoured[int(label)], size=int(hints.sum()))
        texts.append("".join(alphabet[chars]))
    return Reviews(texts, labels, "synthetic long-tailed reviews")


def load_reviews(data_dir: Path | None, limit: int | None, seed: int) -> Reviews:
    """ChnSentiCorp from `data_dir` where it is, else the synthetic stand-in; `limit` reviews
    drawn at random (None: all)."""
    path = data_dir / corpora.CHNSENTICORP if data_dir else None
    reviews = read_reviews(path) if path is not None and path.is_file() else synthetic_reviews(7766, seed)
    if limit is not None and limit < len(reviews.texts):
        keep = np.sort(np.random.default_rng(seed).permutation(len(reviews.texts))[:limit])
        reviews = Reviews([reviews.texts[k] for k in keep], reviews.labels[keep], reviews.source)
    return reviews


def character_tokenizer(texts: list[str], max_tokens: int):
    """A tokenizer that, like bert-base-chinese, gives each Chinese character its own token
    (and latin words one each), with [CLS] ... [SEP] around the text; its vocabulary is every
    token seen twice or more in `texts`."""
    import transformers
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(handle_chinese_chars=True, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(
        special_tokens=list(SPECIAL_TOKENS), min_frequency=2, show_progress=False))  # fmt: skip
    cls, sep = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]"))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", model_max_length=max_tokens,
    )  # fmt: skip


def tokenized(tokenizer, texts: list[str], labels: np.ndarray, max_tokens: int):
    """A datasets.Dataset of input_ids, labels and length (tokens, [CLS] and [SEP] included)."""
    import datasets

    encoded = tokenizer(texts, truncation=True, max_length=max_tokens, return_length=True)
    return datasets.Dataset.from_dict({"input_ids": encoded["input_ids"],
                                       "labels": labels.tolist(), "length": encoded["length"]})  # fmt: skip


def small_bert(vocab_size: int, hidden: int, layers: int, heads: int, max_tokens: int, seed: int):
    """BertForSequenceClassification (2 labels) from a random configuration, eager attention,
    whose memory grows with the square of the length as the quadratic cost assumes."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=2 * hidden,
        max_position_embeddings=max_tokens, num_labels=2, attn_implementation="eager",
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config)
