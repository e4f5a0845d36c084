"""Packing tokenized text into blocks of a fixed length, so that no position is wasted on padding.

- ``group_texts``: for ``Dataset.map(batched=True)``: concatenate a batch of tokenized texts and cut it
  into blocks (notebook 04 and ``pretrain mlm``).
- ``prepare_blocks``: documents split into train and evaluation, tokenized and grouped, both sides.
- ``ConstantLengthDataset``: packing on the fly, texts joined by the end-of-text token, for a causal
  LM trained by steps on a corpus too large to tokenize ahead (notebook 06 and ``pretrain clm``).

Taught in: 04_pretraining_roberta (grouping) and 06_pretraining_gpt2_code (constant-length packing).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from contextlib import nullcontext

import datasets
import torch

from nlp_course.errors import PretrainError

MAX_EVAL_DOCUMENTS = 2_000  # held-out documents at most: evaluations stay quick on a large corpus


# --------------------------------------------------------------------------------------------
# Grouping a tokenized dataset into blocks
# --------------------------------------------------------------------------------------------
def group_texts(examples: dict[str, list], block_size: int) -> dict[str, list]:
    """Concatenate a batch of tokenized texts and cut it into blocks of ``block_size`` tokens.

    For ``Dataset.map(batched=True)``: the remainder shorter than a block, at most one per batch of
    texts, is dropped, so no block needs padding.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}.")
    concatenated = {k: [t for seq in examples[k] for t in seq] for k in examples}
    total = (len(next(iter(concatenated.values()))) // block_size) * block_size
    return {k: [v[i : i + block_size] for i in range(0, total, block_size)] for k, v in concatenated.items()}


def prepare_blocks(tokenizer, documents, block_size: int, seed: int, eval_fraction: float, training_args=None):
    """Split documents into train/eval, tokenize them, and pack each side into blocks."""
    docs = datasets.Dataset.from_dict({"text": list(documents)})
    if docs.num_rows < 2:
        raise PretrainError("The corpus needs at least two documents (one for evaluation).")
    n_eval = min(MAX_EVAL_DOCUMENTS, max(1, round(eval_fraction * docs.num_rows)))  # evaluations stay quick
    split = docs.train_test_split(test_size=n_eval, seed=seed)

    def tokenize(batch):
        return tokenizer(batch["text"])

    def pack(ds, name):
        tokenized = ds.map(tokenize, batched=True, remove_columns=["text"], desc=f"tokenizing {name}")
        tokenized = tokenized.remove_columns([c for c in tokenized.column_names if c != "input_ids"])
        return tokenized.map(group_texts, batched=True, fn_kwargs={"block_size": block_size}, desc=f"packing {name}")

    first = training_args.main_process_first(desc="preparing the corpus") if training_args else nullcontext()
    with first:
        return pack(split["train"], "train"), pack(split["test"], "eval")


# --------------------------------------------------------------------------------------------
# Constant-length packing on the fly, for causal language models
# --------------------------------------------------------------------------------------------
def estimate_chars_per_token(tokenizer, texts, max_texts: int = 500) -> float:
    """Characters per token over the first ``max_texts`` texts (CodeParrot's estimate: 3.6 on 500 files)."""
    sample = list(itertools.islice(iter(texts), max_texts))
    n_tokens = sum(len(ids) for ids in tokenizer(sample, add_special_tokens=False)["input_ids"]) if sample else 0
    if n_tokens == 0:
        raise ValueError("Cannot estimate characters per token: the first texts produce no tokens.")
    return sum(map(len, sample)) / n_tokens


class ConstantLengthDataset(torch.utils.data.IterableDataset):
    """Packs any iterable of strings into sequences of exactly ``seq_length`` tokens, no padding.

    Texts are read into a buffer of about ``num_of_sequences`` sequences' worth of characters
    (``seq_length * num_of_sequences * chars_per_token``), tokenized together, joined with the
    end-of-text token, and cut into sequences. The tail of each buffer shorter than ``seq_length``
    is dropped: on average half a sequence per ``num_of_sequences``, under 1 % of the tokens with
    the default 1,024. Yields ``{"input_ids": LongTensor of shape (seq_length,)}``; the labels are
    the inputs (the model shifts them), and there is no attention mask since nothing is padded.

    ``chars_per_token``: estimated from the first 500 texts if not given. ``infinite``: start the
    texts again when they run out, for training by steps (they must then be re-iterable: a list, a
    ``Dataset`` column such as ``ds["content"]``, any object whose ``iter()`` starts over). ``shuffle``: shuffle the sequences of each
    buffer with a generator seeded by ``seed``, so the order is the same on every run.
    ``tokens_read`` and ``tokens_yielded`` count, over the last iteration, the tokens (separators
    included) that came out of the tokenizer and those yielded in sequences.

    Taught in: 06_pretraining_gpt2_code (section "Constant-length packing").
    """

    def __init__(self, tokenizer, texts, seq_length: int = 1024, num_of_sequences: int = 1024,
                 chars_per_token: float | None = None, infinite: bool = False, shuffle: bool = False, seed: int = 0):
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be an iterable of strings (a list, a Dataset column, a stream), not one string.")
        if seq_length < 2 or num_of_sequences < 1:
            raise ValueError(f"seq_length must be at least 2 and num_of_sequences at least 1, got {seq_length}, {num_of_sequences}.")
        if tokenizer.eos_token_id is None:
            raise ValueError("The tokenizer has no end-of-text token (eos_token) to join texts with.")
        if infinite and iter(texts) is texts:
            raise ValueError("infinite=True reads the texts again and again: pass a list or a dataset, not an iterator.")
        if chars_per_token is None:
            if iter(texts) is texts:  # a one-shot iterator: keep the texts the estimate reads
                head = list(itertools.islice(texts, 500))
                texts = itertools.chain(head, texts)
                chars_per_token = estimate_chars_per_token(tokenizer, head)
            else:
                chars_per_token = estimate_chars_per_token(tokenizer, texts)
        self.tokenizer, self.texts, self.seq_length = tokenizer, texts, seq_length
        self.num_of_sequences, self.chars_per_token = num_of_sequences, chars_per_token
        self.infinite, self.shuffle, self.seed = infinite, shuffle, seed
        self.max_buffer_chars = seq_length * num_of_sequences * chars_per_token
        self.tokens_read = self.tokens_yielded = 0

    def _buffers(self) -> Iterator[list[str]]:
        """Lists of texts of about ``max_buffer_chars`` characters, the texts restarted if infinite."""
        buffer, size, epoch_texts = [], 0, 0
        texts = iter(self.texts)
        while True:
            try:
                text = next(texts)
            except StopIteration:
                if not self.infinite or epoch_texts == 0:  # finite, or nothing to loop over
                    break
                texts, epoch_texts = iter(self.texts), 0
                continue
            epoch_texts += 1
            buffer.append(text)
            size += len(text)
            if size >= self.max_buffer_chars:
                yield buffer
                buffer, size = [], 0
        if buffer:
            yield buffer

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = torch.utils.data.get_worker_info()  # several DataLoader workers: one share of the buffers each
        rng = random.Random(self.seed)
        self.tokens_read = self.tokens_yielded = 0
        for b, buffer in enumerate(self._buffers()):
            if worker is not None and b % worker.num_workers != worker.id:
                continue
            ids: list[int] = []
            for text_ids in self.tokenizer(buffer, add_special_tokens=False)["input_ids"]:
                ids.extend(text_ids)
                ids.append(self.tokenizer.eos_token_id)
            self.tokens_read += len(ids)
            sequences = [ids[i : i + self.seq_length] for i in range(0, len(ids) - self.seq_length + 1, self.seq_length)]
            if self.shuffle:
                rng.shuffle(sequences)
            for sequence in sequences:
                self.tokens_yielded += self.seq_length
                yield {"input_ids": torch.tensor(sequence, dtype=torch.long)}
