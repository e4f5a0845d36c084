"""Pretraining objectives: what the model is asked to predict, and the labels that say so.

- ``mask_tokens``: BERT's masking (15 % of tokens; of those 80 % ``<mask>``, 10 % a random token,
  10 % unchanged; labels -100 elsewhere), the same operations in the same order as
  ``transformers.DataCollatorForLanguageModeling``, so with the same generator the two agree bit for bit.
- ``SeededMLMCollator``: dynamic masking whose masks are a pure function of (seed, epoch, example).
  A run killed and resumed from a checkpoint then sees exactly the masks the uninterrupted run saw,
  which the library's collator does not guarantee; evaluation masks are fixed once.
- ``nsp_pairs``: next-sentence-prediction pairs from documents, 50 % IsNext, 50 % NotNext.

Packing text into blocks is in ``nlp_course.packing``.

Taught in: 02_pretraining_objectives (masking, NSP) and 04_pretraining_roberta (the seeded collator).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import torch
from transformers import TrainerCallback

IGNORE_INDEX = -100  # labels with this value are left out of the loss


def mask_tokens(
    input_ids: torch.Tensor,
    tokenizer,
    generator: torch.Generator | None = None,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked inputs and labels for a padded batch of ids (special and padding tokens never masked)."""
    labels = input_ids.clone()
    inputs = input_ids.clone()
    special = torch.tensor(
        [tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True) for row in labels.tolist()],
        dtype=torch.bool,
    )
    probability = torch.full(labels.shape, mlm_probability).masked_fill_(special, 0.0)
    masked = torch.bernoulli(probability, generator=generator).bool()
    labels[~masked] = IGNORE_INDEX
    replaced = torch.bernoulli(torch.full(labels.shape, mask_replace_prob), generator=generator).bool() & masked
    inputs[replaced] = tokenizer.mask_token_id
    if mask_replace_prob == 1 or random_replace_prob == 0:  # as the library: no random replacement drawn
        return inputs, labels
    scaled = random_replace_prob / (1 - mask_replace_prob)  # of the masked tokens not yet replaced
    randomized = torch.bernoulli(torch.full(labels.shape, scaled), generator=generator).bool() & masked & ~replaced
    random_words = torch.randint(len(tokenizer), labels.shape, dtype=torch.long, generator=generator)
    inputs[randomized] = random_words[randomized]
    return inputs, labels


def _example_seed(seed: int, epoch: int, ids: Sequence[int]) -> int:
    digest = hashlib.blake2b(f"{seed}|{epoch}|".encode() + torch.tensor(ids, dtype=torch.int64).numpy().tobytes(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


class SeededMLMCollator:
    """Pads a batch and masks each example with a generator seeded from (seed, epoch, its ids).

    Set ``epoch`` as training moves on (``MaskingEpochCallback`` does it for ``Trainer``) to get a
    new mask every epoch, RoBERTa's dynamic masking. Leave ``epoch=-1`` for evaluation: the masks
    are then the same at every evaluation, and eval losses are comparable.
    """

    def __init__(self, tokenizer, mlm_probability: float = 0.15, seed: int = 0, epoch: int = -1,
                 pad_to_multiple_of: int | None = None, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1):
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("Masked language modelling needs a tokenizer with a mask token and a padding token.")
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must be between 0 and 1, got {mlm_probability}.")
        self.tokenizer, self.mlm_probability, self.seed, self.epoch = tokenizer, mlm_probability, seed, epoch
        self.pad_to_multiple_of = pad_to_multiple_of
        # BERT's 80/10/10 by default; ELECTRA's generator input is 85 % <mask>, 15 % unchanged, no random token
        self.mask_replace_prob, self.random_replace_prob = mask_replace_prob, random_replace_prob

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        if "labels" in examples[0]:  # already masked (an evaluation set masked once): pad, never re-mask
            rows = [(list(e["input_ids"]), list(e["labels"])) for e in examples]
        else:  # mask each example on its own, unpadded: its mask cannot depend on its batch partners
            rows = []
            for e in examples:
                ids = list(e["input_ids"])
                generator = torch.Generator().manual_seed(_example_seed(self.seed, self.epoch, ids))
                masked, label = mask_tokens(torch.tensor([ids]), self.tokenizer, generator, self.mlm_probability,
                                            self.mask_replace_prob, self.random_replace_prob)
                rows.append((masked[0].tolist(), label[0].tolist()))
        batch = self.tokenizer.pad({"input_ids": [r[0] for r in rows]}, pad_to_multiple_of=self.pad_to_multiple_of,
                                   return_tensors="pt")
        width = batch["input_ids"].shape[1]
        batch["labels"] = torch.tensor([r[1] + [IGNORE_INDEX] * (width - len(r[1])) for r in rows])
        return batch


class MaskingEpochCallback(TrainerCallback):
    """Tells a ``SeededMLMCollator`` which epoch ``Trainer`` is in (restored on resume too)."""

    def __init__(self, collator: SeededMLMCollator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int((state.epoch or 0) + 1e-6)  # 0.9999… at an epoch boundary is 1


def mask_once(dataset, tokenizer, seed: int, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
              random_replace_prob: float = 0.1):
    """An evaluation set masked once, with ``labels``: every evaluation then scores the same tokens.

    ``SeededMLMCollator`` passes examples that already have labels through unchanged.
    """
    collator = SeededMLMCollator(tokenizer, mlm_probability=mlm_probability, seed=seed, epoch=-1,
                                 mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob)

    def mask(batch):
        out = collator([{"input_ids": ids} for ids in batch["input_ids"]])
        width = [len(ids) for ids in batch["input_ids"]]
        return {"input_ids": [row[:n].tolist() for row, n in zip(out["input_ids"], width, strict=True)],
                "labels": [row[:n].tolist() for row, n in zip(out["labels"], width, strict=True)]}

    return dataset.map(mask, batched=True, desc="masking the evaluation set once")


def nsp_pairs(documents: Sequence[Sequence[str]], seed: int = 0) -> list[dict]:
    """Sentence pairs for next sentence prediction, from documents given as lists of sentences.

    For each sentence that has a successor: half the time the pair is (sentence, next sentence),
    label 0 (IsNext); otherwise the second sentence is drawn from another document, label 1
    (NotNext), the convention of ``BertForPreTraining``.
    """
    usable = [doc for doc in documents if len(doc) >= 1]
    if len(usable) < 2:
        raise ValueError("NSP needs at least two documents, to draw NotNext sentences from another one.")
    rng = random.Random(seed)
    pairs = []
    for d, doc in enumerate(usable):
        for i in range(len(doc) - 1):
            if rng.random() < 0.5:
                pairs.append({"sentence_a": doc[i], "sentence_b": doc[i + 1], "next_sentence_label": 0})
            else:
                other = rng.choice([j for j in range(len(usable)) if j != d])
                pairs.append({"sentence_a": doc[i], "sentence_b": rng.choice(usable[other]), "next_sentence_label": 1})
    return pairs
