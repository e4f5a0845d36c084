"""ELECTRA from scratch: a small generator and a discriminator trained together (replaced-token detection).

transformers has ``ElectraForMaskedLM`` (the generator) and ``ElectraForPreTraining`` (the
discriminator) but no model that trains them together; this module is that model, faithful to the
paper (Clark et al., ICLR 2020) and its reference code (google-research/electra):

- ``electra_configs``: the discriminator's ``ElectraConfig`` and the generator's, the same depth at a
  fraction of the width (hidden size, heads and feed-forward all scaled; 1/4 by default).
- ``ElectraPretrainingModel``: the two models sharing one embeddings module (word, position and type
  embeddings and their LayerNorm); the generator's output layer is the shared word embeddings.
  ``forward`` masks nothing itself: it takes a batch masked by ``SeededMLMCollator`` with ELECTRA's
  rule (``ELECTRA_MASKING``: 15 % of the non-special tokens, 85 % of those become the mask token,
  15 % stay unchanged, never a random token), samples the generator at the masked positions with
  Gumbel-max in fp32 and without gradient, labels a token "replaced" when the sample differs from
  the original, and returns ``generator loss + 50 x discriminator loss``. The pieces are
  ``gumbel_max``, ``replaced_labels``, ``discriminator_loss`` and ``electra_loss``.
- ``roc_auc``, ``detection_metrics``, ``collapse_warning``: how well the discriminator tells replaced
  from original tokens, and the collapse users often hit (every token called original).
- ``save_electra`` / ``load_electra``: ``discriminator/`` and ``generator/`` as standard transformers
  folders (safetensors and the tokenizer), which ``ElectraForPreTraining``,
  ``AutoModelForSequenceClassification`` and ``pipeline("fill-mask")`` load.
- ``run_electra(config)``: ``python -m nlp_course.pretrain electra``, with ``Trainer``, the same
  phases, checkpoints, resume and torchrun as ``mlm``.
- ``pretrain_snapshots``, ``fine_tune_accuracy``: the short loops of notebook 05's comparison of
  ELECTRA and MLM at the same compute.

Taught in: 05_pretraining_electra.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from transformers import (
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    ElectraForSequenceClassification,
    Trainer,
    set_seed,
)
from transformers.utils import ModelOutput

from nlp_course.errors import PretrainError
from nlp_course.evaluation import perplexity, pretraining_warnings
from nlp_course.files import StopRequest, lock_folder
from nlp_course.mlm import (
    StopOnRequest,
    load_documents,
    tensorboard_callback,
    train_to_the_end,
    training_arguments,
    unigram_baseline,
)
from nlp_course.mlm import final_metrics as mlm_metrics
from nlp_course.objectives import IGNORE_INDEX, MaskingEpochCallback, SeededMLMCollator, mask_once
from nlp_course.packing import prepare_blocks
from nlp_course.runs import load_tokenizer, prepare_run
from nlp_course.runtime import detect_device

ELECTRA_MASKING = {"mlm_probability": 0.15, "mask_replace_prob": 0.85, "random_replace_prob": 0.0}
GENERATOR_RATIO = 0.25  # the paper's best generators are 1/4 to 1/2 of the discriminator's width
DISCRIMINATOR_WEIGHT = 50.0  # lambda in the paper: the discriminator's loss is much smaller per token
ELECTRA_SMALL = {"embedding_size": 128, "hidden_size": 256, "num_layers": 12, "num_heads": 4,
                 "intermediate_size": 1024, "seq_length": 128, "learning_rate": 5e-4, "batch_size": 128}
COLLAPSE_RECALL = 0.05  # below this recall the discriminator calls (almost) every token original


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------
def embedding_size_for(hidden_size: int) -> int:
    """ELECTRA's embedding width: half the hidden size for small models (Small: 128 of 256), equal from Base on."""
    return hidden_size // 2 if hidden_size < 512 else hidden_size


def electra_configs(vocab_size: int, hidden_size: int, num_layers: int, num_heads: int, seq_length: int,
                    generator_ratio: float = GENERATOR_RATIO, embedding_size: int | None = None,
                    pad_token_id: int = 0) -> tuple[ElectraConfig, ElectraConfig]:
    """The discriminator's config and the generator's: same depth and embeddings, ``generator_ratio`` of the width.

    >>> d, g = electra_configs(1000, 256, 12, 4, 128)
    >>> (d.embedding_size, d.hidden_size, d.intermediate_size), (g.hidden_size, g.num_attention_heads, g.intermediate_size)
    ((128, 256, 1024), (64, 1, 256))
    """
    if not 0 < generator_ratio <= 1:
        raise ValueError(f"generator_ratio must be in (0, 1], got {generator_ratio}.")
    discriminator = ElectraConfig(
        vocab_size=vocab_size,
        embedding_size=embedding_size or embedding_size_for(hidden_size),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=4 * hidden_size,
        max_position_embeddings=seq_length,
        type_vocab_size=1,  # one segment: no sentence pairs in pretraining
        pad_token_id=pad_token_id,
        attn_implementation="sdpa",
    )
    generator = copy.deepcopy(discriminator)
    generator.hidden_size = max(1, round(hidden_size * generator_ratio))
    heads = max(1, round(num_heads * generator_ratio))
    while generator.hidden_size % heads:
        heads -= 1
    generator.num_attention_heads = heads
    generator.intermediate_size = 4 * generator.hidden_size
    return discriminator, generator


# --------------------------------------------------------------------------------------------
# The objective, piece by piece (notebook 05 writes each out and checks it against these)
# --------------------------------------------------------------------------------------------
def gumbel_max(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One sample per row of ``logits`` (softmax sampling), as ``argmax(logits + Gumbel noise)``, in fp32."""
    logits = logits.float()
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
    gumbel = -torch.log(-torch.log(uniform + 1e-9) + 1e-9)  # the reference code's epsilons
    return (logits + gumbel).argmax(dim=-1)


def replaced_labels(original: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """1.0 where the corrupted token differs from the original (a correct sample counts as original)."""
    return (corrupted != original).float()


def discriminator_loss(logits: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of "replaced", averaged over every non-padding token, in fp32."""
    per_token = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    weights = attention_mask.float()
    return (per_token * weights).sum() / weights.sum().clamp(min=1.0)


def electra_loss(generator_loss: torch.Tensor, discriminator_loss_: torch.Tensor,
                 discriminator_weight: float = DISCRIMINATOR_WEIGHT) -> torch.Tensor:
    """The loss both models minimise together: the generator's MLM loss + lambda x the discriminator's."""
    return generator_loss + discriminator_weight * discriminator_loss_


@dataclass
class ElectraPretrainingOutput(ModelOutput):
    """Every field but ``loss`` is one value per token (so that ``Trainer`` can gather it at evaluation).

    ``is_replaced``: 1/0, and -100 on padding; the ``generator_*`` fields: -100 where nothing was masked.
    """

    loss: torch.Tensor | None = None
    discriminator_logits: torch.Tensor | None = None
    is_replaced: torch.Tensor | None = None
    generator_token_loss: torch.Tensor | None = None
    generator_argmax_hit: torch.Tensor | None = None
    generator_sample_hit: torch.Tensor | None = None
    corrupted_ids: torch.Tensor | None = None  # what the discriminator read


def evaluation_noise(input_ids: torch.Tensor) -> torch.Generator:
    """The random generator an evaluation samples with, seeded by the batch's ids: the same batch, the same samples."""
    digest = hashlib.blake2b(input_ids.detach().cpu().numpy().tobytes(), digest_size=8).digest()
    return torch.Generator(device=input_ids.device).manual_seed(int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF)


class ElectraPretrainingModel(torch.nn.Module):
    """A generator (``ElectraForMaskedLM``) and a discriminator (``ElectraForPreTraining``) trained together.

    ``replacement="uniform"`` swaps the generator's samples for uniformly random tokens (the generator
    still trains): an easy corruption, to check that the discriminator's side learns at all.
    In evaluation mode the sampling noise is a function of the batch, so evaluations are repeatable.
    """

    def __init__(self, discriminator_config: ElectraConfig, generator_config: ElectraConfig,
                 discriminator_weight: float = DISCRIMINATOR_WEIGHT, replacement: str = "generator"):
        super().__init__()
        if replacement not in ("generator", "uniform"):
            raise ValueError(f"replacement must be 'generator' or 'uniform', got {replacement!r}.")
        self.discriminator = ElectraForPreTraining(discriminator_config)
        self.generator = ElectraForMaskedLM(generator_config)
        self.discriminator_weight, self.replacement = discriminator_weight, replacement
        self.share_embeddings()
        self.config = discriminator_config  # what Trainer and the FLOPs count read

    def share_embeddings(self) -> None:
        """One embeddings module for both models; the generator's output layer is its word embeddings."""
        shared = self.discriminator.electra.embeddings
        self.generator.electra.embeddings = shared
        self.generator.generator_lm_head.weight = shared.word_embeddings.weight

    def generator_logits(self, input_ids, attention_mask, masked: torch.Tensor) -> torch.Tensor:
        """The generator's logits at the masked positions only (as the reference code: 15 % of the output layer's cost)."""
        hidden = self.generator.electra(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.generator.generator_lm_head(self.generator.generator_predictions(hidden[masked]))

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None) -> ElectraPretrainingOutput:
        if labels is None:
            raise ValueError("ElectraPretrainingModel needs labels: the original ids at masked positions, -100 elsewhere "
                             "(SeededMLMCollator(..., **ELECTRA_MASKING) makes them).")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        masked = labels != IGNORE_INDEX
        original = torch.where(masked, labels, input_ids)
        logits = self.generator_logits(input_ids, attention_mask, masked)
        device_type = input_ids.device.type
        with torch.autocast(device_type=device_type, enabled=False):  # sampling and both losses in fp32
            logits = logits.float()
            token_loss = F.cross_entropy(logits, labels[masked], reduction="none")
            generator_loss = token_loss.mean() if token_loss.numel() else logits.sum() * 0.0
            with torch.no_grad():
                noise = None if self.training else evaluation_noise(input_ids)  # repeatable evaluations
                if self.replacement == "uniform":
                    sampled = torch.randint(logits.shape[-1], labels[masked].shape, generator=noise,
                                            device=input_ids.device)
                else:
                    sampled = gumbel_max(logits.detach(), noise)
                corrupted = input_ids.clone()
                corrupted[masked] = sampled
                is_replaced = replaced_labels(original, corrupted)
        disc_logits = self.discriminator(input_ids=corrupted, attention_mask=attention_mask).logits
        with torch.autocast(device_type=device_type, enabled=False):
            disc_loss = discriminator_loss(disc_logits, is_replaced, attention_mask)
            loss = electra_loss(generator_loss, disc_loss, self.discriminator_weight)

        def per_token(values):
            out = torch.full(input_ids.shape, float(IGNORE_INDEX), device=input_ids.device)
            out[masked] = values.float()
            return out

        return ElectraPretrainingOutput(
            loss=loss,
            discriminator_logits=disc_logits.detach().float(),
            is_replaced=is_replaced.masked_fill(attention_mask == 0, IGNORE_INDEX),
            generator_token_loss=per_token(token_loss.detach()),
            generator_argmax_hit=per_token(logits.detach().argmax(-1) == labels[masked]),
            generator_sample_hit=per_token(sampled == labels[masked]),
            corrupted_ids=corrupted,
        )


def electra_model(tokenizer, sizes, seq_length: int, generator_ratio: float = GENERATOR_RATIO,
                  discriminator_weight: float = DISCRIMINATOR_WEIGHT, replacement: str = "generator",
                  embedding_size: int | None = None) -> ElectraPretrainingModel:
    """The joint model for ``tokenizer``, sized by anything with ``hidden_size``, ``num_layers`` and ``num_heads``."""
    disc, gen = electra_configs(len(tokenizer), sizes.hidden_size, sizes.num_layers, sizes.num_heads, seq_length,
                                generator_ratio, embedding_size, tokenizer.pad_token_id)
    return ElectraPretrainingModel(disc, gen, discriminator_weight, replacement)


def electra_collator(tokenizer, seed: int, pad_to_multiple_of: int | None = 8) -> SeededMLMCollator:
    """ELECTRA's masking (85 % mask token, 15 % unchanged, no random token), seeded per example."""
    return SeededMLMCollator(tokenizer, seed=seed, pad_to_multiple_of=pad_to_multiple_of, **ELECTRA_MASKING)


def mask_once_electra(dataset, tokenizer, seed: int):
    """An evaluation set masked once with ELECTRA's rule."""
    return mask_once(dataset, tokenizer, seed, **ELECTRA_MASKING)


# --------------------------------------------------------------------------------------------
# How well the discriminator detects replacements
# --------------------------------------------------------------------------------------------
def roc_auc(scores, labels) -> float:
    """The probability that a random replaced token scores above a random original one (ties count half).

    The Mann-Whitney form of the area under the ROC curve: rank all scores (ties get their mean
    rank), sum the ranks of the positives. ``nan`` when only one class is present.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # 1 .. N, ties at their mean rank
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def detection_metrics(logits, is_replaced, generator_token_loss=None, generator_argmax_hit=None,
                      generator_sample_hit=None) -> dict:
    """Accuracy, precision, recall and ROC AUC of "replaced" over non-padding tokens, the replaced
    fraction, and the generator's loss and accuracies on masked tokens (arguments: one value per token,
    -100 where it does not apply, as ``ElectraPretrainingOutput`` gives them)."""
    logits, is_replaced = np.asarray(logits, dtype=np.float64), np.asarray(is_replaced)
    keep = is_replaced != IGNORE_INDEX
    scores, truth = logits[keep], is_replaced[keep].astype(bool)
    predicted = scores > 0  # probability above 1/2
    true_positives = int((predicted & truth).sum())
    metrics = {
        "discriminator_accuracy": float((predicted == truth).mean()) if truth.size else float("nan"),
        "discriminator_precision": true_positives / int(predicted.sum()) if predicted.any() else 0.0,
        "discriminator_recall": true_positives / int(truth.sum()) if truth.any() else float("nan"),
        "discriminator_auc": roc_auc(scores, truth),
        "replaced_fraction": float(truth.mean()) if truth.size else float("nan"),
    }
    for name, values in (("generator_loss", generator_token_loss), ("generator_accuracy", generator_argmax_hit),
                         ("generator_sampled_accuracy", generator_sample_hit)):
        if values is not None:
            values = np.asarray(values, dtype=np.float64)
            values = values[values != IGNORE_INDEX]
            metrics[name] = float(values.mean()) if values.size else float("nan")
    return metrics


def compute_electra_metrics(eval_prediction) -> dict:
    """``Trainer``'s ``compute_metrics``: the predictions are ``ElectraPretrainingOutput``'s per-token fields."""
    return detection_metrics(*eval_prediction.predictions[:5])  # the ids read (last) are not a metric


def collapse_warning(metrics: dict) -> str | None:
    """Plain words when the discriminator calls (almost) every token original, else None."""
    recall, accuracy = metrics.get("discriminator_recall"), metrics.get("discriminator_accuracy")
    replaced = metrics.get("replaced_fraction")
    if recall is None or replaced is None or not replaced > 0 or recall >= COLLAPSE_RECALL:
        return None
    return (f"The discriminator has collapsed: it calls almost every token original (recall {recall:.2f}), so its "
            f"accuracy {accuracy:.3f} is only the share of original tokens (1 - {replaced:.3f}). It has learnt how "
            f"often tokens are replaced, not which ones; its ROC AUC ({metrics.get('discriminator_auc', float('nan')):.2f}) "
            "says whether it ranks them at all. Once the generator samples plausible words, telling them apart takes "
            "an understanding of context that only more text and more steps give (at toy scale this is expected: "
            "notebook 05, sections 6 and 7).")


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------
def save_electra(model: ElectraPretrainingModel, tokenizer, folder: Path) -> None:
    """``folder/discriminator`` and ``folder/generator``: safetensors, config and tokenizer in each."""
    for name in ("discriminator", "generator"):
        part = getattr(model, name)
        part.save_pretrained(Path(folder) / name)
        tokenizer.save_pretrained(Path(folder) / name)


def load_electra(folder: Path, discriminator_weight: float = DISCRIMINATOR_WEIGHT) -> ElectraPretrainingModel:
    """The joint model back from ``save_electra``'s folders, its embeddings shared again."""
    disc = ElectraForPreTraining.from_pretrained(Path(folder) / "discriminator")
    gen = ElectraForMaskedLM.from_pretrained(Path(folder) / "generator")
    model = ElectraPretrainingModel(disc.config, gen.config, discriminator_weight)
    model.discriminator, model.generator = disc, gen
    model.share_embeddings()  # the two files hold equal copies of the embeddings; one module again
    return model


class ElectraTrainer(Trainer):
    """``Trainer`` whose checkpoints store each shared tensor once (safetensors refuses aliased tensors)."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = Path(output_dir or self.args.output_dir)
        if not self.args.should_save:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        safetensors.torch.save_model(model, str(output_dir / "model.safetensors"), metadata={"format": "pt"})
        if self.processing_class is not None:
            self.processing_class.save_pretrained(str(output_dir))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """The weights back, strictly: each shared tensor was stored once, under one of its names."""
        model = self.accelerator.unwrap_model(model or self.model, keep_torch_compile=False)
        safetensors.torch.load_model(model, str(Path(resume_from_checkpoint) / "model.safetensors"), strict=True,
                                     device="cpu")
        model.share_embeddings()


# --------------------------------------------------------------------------------------------
# FLOPs: what a step of each objective costs
# --------------------------------------------------------------------------------------------
def encoder_flops_per_token(config: ElectraConfig, seq_length: int, output_rows: int = 0,
                            output_fraction: float = 1.0) -> float:
    """Training FLOPs per token of an ELECTRA encoder (6 x matmul parameters + attention), plus an output
    layer of ``output_rows`` x embedding size computed for ``output_fraction`` of the tokens."""
    e, h, layers, ffn = config.embedding_size, config.hidden_size, config.num_hidden_layers, config.intermediate_size
    project = e * h if e != h else 0
    per_layer = 4 * h * h + 2 * h * ffn
    body = 6 * (project + layers * per_layer) + 12 * layers * h * seq_length
    head = 6 * (h * e + output_rows * e) * output_fraction  # dense to the embedding width, then the tied output
    return body + head


def step_flops(objective: str, discriminator: ElectraConfig, generator: ElectraConfig | None, seq_length: int,
               mask_fraction: float = 0.15) -> float:
    """FLOPs per token of one training step: ELECTRA counts both models' forward and backward passes.

    MLM: the discriminator-sized encoder with its output layer on the masked tokens (as ELECTRA's own
    generator; transformers' ``ElectraForMaskedLM`` computes it for every token, which only adds cost).
    ELECTRA: the generator the same way, plus the discriminator and its one-unit head on every token.
    """
    vocab = discriminator.vocab_size
    if objective == "mlm":
        return encoder_flops_per_token(discriminator, seq_length, vocab, mask_fraction)
    if objective != "electra":
        raise ValueError(f"objective must be 'mlm' or 'electra', got {objective!r}.")
    gen = encoder_flops_per_token(generator, seq_length, vocab, mask_fraction)
    h = discriminator.hidden_size
    disc = encoder_flops_per_token(discriminator, seq_length) - 6 * (h * discriminator.embedding_size)
    return gen + disc + 6 * (h * h + h)  # the discriminator's head: dense h x h, then one unit


# --------------------------------------------------------------------------------------------
# Notebook 05's comparison: short loops, many runs
# --------------------------------------------------------------------------------------------
def pretrain_snapshots(objective: str, tokenizer, blocks: list[list[int]], sizes, seq_length: int, steps: list[int],
                       seed: int, batch_size: int = 16, learning_rate: float = 1e-3,
                       generator_ratio: float = GENERATOR_RATIO, progress=None) -> dict[int, dict]:
    """Pretrain with ``objective`` ("electra" or "mlm") and keep the encoder's weights at each of ``steps``.

    Both objectives train the same encoder (``ElectraModel`` inside the discriminator, or inside an
    ``ElectraForMaskedLM`` of the discriminator's size) with the same data order, AdamW and linear
    schedule; the snapshots are the encoder's ``state_dict`` (``electra.*`` keys), ready for
    ``ElectraForSequenceClassification``.
    """
    set_seed(seed)
    disc, gen = electra_configs(len(tokenizer), sizes.hidden_size, sizes.num_layers, sizes.num_heads, seq_length,
                                generator_ratio, pad_token_id=tokenizer.pad_token_id)
    if objective == "electra":
        model = ElectraPretrainingModel(disc, gen)
        encoder = model.discriminator
        collator = electra_collator(tokenizer, seed, pad_to_multiple_of=None)
    elif objective == "mlm":
        model = encoder = ElectraForMaskedLM(disc)
        collator = SeededMLMCollator(tokenizer, seed=seed)  # BERT's 80/10/10
    else:
        raise ValueError(f"objective must be 'mlm' or 'electra', got {objective!r}.")
    last = max(steps)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, eps=1e-6, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, last // 10)) * max(0.0, 1 - s / last))
    order = torch.Generator().manual_seed(seed)
    snapshots, step = {}, 0
    model.train()
    while step < last:
        index = torch.randperm(len(blocks), generator=order)[:batch_size].tolist()
        collator.epoch = step  # a new mask at every step
        batch = collator([{"input_ids": blocks[i]} for i in index])
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if progress is not None:
            progress.update(1)
        if step in steps:
            snapshots[step] = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()
                               if k.startswith("electra.")}
    return snapshots


def fine_tune_accuracy(encoder_state: dict | None, config: ElectraConfig, train: dict, test: dict, num_labels: int,
                       seed: int, epochs: int = 4, batch_size: int = 16, learning_rate: float = 3e-4) -> float:
    """Fine-tune an ``ElectraForSequenceClassification`` from ``encoder_state`` (None: from scratch) and
    return its test accuracy. ``train`` and ``test``: ``{"input_ids": [...], "labels": [...]}``, unpadded."""
    set_seed(seed)
    model = ElectraForSequenceClassification(_with_labels(config, num_labels))
    if encoder_state is not None:
        missing, unexpected = model.load_state_dict(encoder_state, strict=False)
        if unexpected or any(k.startswith("electra.") for k in missing):
            raise ValueError(f"the snapshot does not fit the classifier: missing {missing}, unexpected {unexpected}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    order = torch.Generator().manual_seed(seed)
    pad = config.pad_token_id

    def batches(split, shuffle):
        n = len(split["labels"])
        index = torch.randperm(n, generator=order).tolist() if shuffle else list(range(n))
        for start in range(0, n, batch_size):
            rows = index[start:start + batch_size]
            width = max(len(split["input_ids"][i]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, :len(split["input_ids"][i])] = torch.tensor(split["input_ids"][i])
            yield ids.to(device), (ids != pad).long().to(device), torch.tensor([split["labels"][i] for i in rows]).to(device)

    model.train()
    for _ in range(epochs):
        for ids, mask, labels in batches(train, True):
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for ids, mask, labels in batches(test, False):
            correct += int((model(input_ids=ids, attention_mask=mask).logits.argmax(-1) == labels).sum())
    return correct / len(test["labels"])


def _with_labels(config: ElectraConfig, num_labels: int) -> ElectraConfig:
    config = copy.deepcopy(config)
    config.num_labels = num_labels
    return config


# --------------------------------------------------------------------------------------------
# python -m nlp_course.pretrain electra
# --------------------------------------------------------------------------------------------
ELECTRA_OPTIMIZER = {"adam_beta2": 0.999, "adam_epsilon": 1e-6}  # the reference code's Adam; decay 0.01, clip 1.0


def final_metrics(config, trainer: Trainer, device, start: dict, wall_seconds: float) -> dict:
    """``metrics.json``: the ``mlm`` keys (losses of the joint objective; perplexity of the generator) and
    the discriminator's and generator's scores on the held-out blocks."""
    metrics = mlm_metrics(config, trainer, device, start, wall_seconds)  # evaluates once more, and logs it
    final = next(entry for entry in reversed(trainer.state.log_history) if "eval_generator_loss" in entry)
    generator_loss = final["eval_generator_loss"]
    initial_generator_loss = start.get("initial_evaluation", {}).get("eval_generator_loss")  # None after a resume
    warnings = pretraining_warnings(generator_loss, start["unigram_eval_loss"], initial_generator_loss,
                                    what="The generator's eval loss")
    collapse = collapse_warning({k.removeprefix("eval_"): v for k, v in final.items()})
    metrics.update({
        "objective": "electra",
        "final_perplexity": perplexity(generator_loss),  # the generator's, on the masked tokens
        "generator_loss": generator_loss,
        "generator_accuracy": final["eval_generator_accuracy"],
        "generator_sampled_accuracy": final["eval_generator_sampled_accuracy"],
        "replaced_fraction": final["eval_replaced_fraction"],
        "discriminator_accuracy": final["eval_discriminator_accuracy"],
        "discriminator_precision": final["eval_discriminator_precision"],
        "discriminator_recall": final["eval_discriminator_recall"],
        "discriminator_auc": final["eval_discriminator_auc"],
        "warnings": warnings + ([collapse] if collapse else []),
        "generator_ratio": config.generator_ratio,
        "discriminator_weight": config.discriminator_weight,
        "discriminator_parameters": sum(p.numel() for p in trainer.model.discriminator.parameters())
        if hasattr(trainer.model, "discriminator") else None,
    })
    return metrics


def run_electra(config) -> dict:
    """Pretrain ELECTRA (generator and discriminator together) with ``Trainer``; return (and write) the metrics."""
    checkpoint = prepare_run(config)
    corpus = load_documents(config)
    lock_folder(config.output_dir)  # one run at a time here: a second one stops now, having written nothing
    device = detect_device()
    training_args = training_arguments(config, device, label_names=["labels"], **ELECTRA_OPTIMIZER)
    with training_args.main_process_first(desc="the tokenizer"):
        tokenizer = load_tokenizer(config, verbose=training_args.process_index == 0)
    if tokenizer.mask_token_id is None:
        raise PretrainError("The tokenizer has no mask token; ELECTRA's generator needs one "
                            "(train it with kind='bpe', family='roberta').")
    train_blocks, eval_blocks = prepare_blocks(tokenizer, (row["text"] for row in corpus), config.seq_length,
                                               config.seed, config.eval_fraction, training_args)
    if train_blocks.num_rows == 0 or eval_blocks.num_rows == 0:
        raise PretrainError(f"The corpus is too small for blocks of {config.seq_length} tokens; lower --block-size.")
    eval_blocks = mask_once_electra(eval_blocks, tokenizer, config.seed)

    set_seed(config.seed)
    model = electra_model(tokenizer, config, config.seq_length, config.generator_ratio, config.discriminator_weight)
    collator = electra_collator(tokenizer, config.seed)
    stop = StopRequest()
    trainer = ElectraTrainer(model=model, args=training_args, data_collator=collator, train_dataset=train_blocks,
                             eval_dataset=eval_blocks, processing_class=tokenizer,
                             compute_metrics=compute_electra_metrics,
                             callbacks=[MaskingEpochCallback(collator), tensorboard_callback(config),
                                        StopOnRequest(stop)])
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    return train_to_the_end(config, trainer, checkpoint, stop, device,
                            unigram_baseline(tokenizer, train_blocks, eval_blocks), final_metrics,
                            lambda folder: save_electra(unwrapped, tokenizer, folder))
