"""The models the course pretrains, sized by a profile, and what it costs to train them.

- ``roberta_config`` and ``gpt2_config``: the encoder of notebook 04 and the decoder of notebook 06,
  sized by anything with ``hidden_size``, ``num_layers`` and ``num_heads`` (a ``Profile`` or a
  ``RunConfig``).
- ``weight_decay_groups``: AdamW parameter groups, no weight decay on biases and LayerNorm weights.
- ``flops_per_token`` and ``matmul_params``: training FLOPs per token, PaLM's estimate, for MFU.
- ``training_plan``: a run's FLOPs and its expected duration on a T4, printed before training starts.

Taught in: 04_pretraining_roberta (``RobertaConfig``) and 06_pretraining_gpt2_code (the rest).
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, RobertaConfig

from nlp_course.runtime import T4_TFLOPS

VOCAB_MULTIPLE = 64  # tensor cores (and the output softmax) run faster on a multiple of 64


def padded_vocab_size(n_tokens: int, multiple: int = VOCAB_MULTIPLE) -> int:
    """The smallest multiple of ``multiple`` that holds ``n_tokens`` (4,000 -> 4,032)."""
    return -(-n_tokens // multiple) * multiple


def gpt2_config(tokenizer, sizes, seq_length: int | None = None) -> GPT2Config:
    """GPT-2 sized by ``sizes`` (hidden size, layers, heads), with a context of ``seq_length`` tokens.

    The vocabulary is padded to a multiple of 64: the extra rows are never seen as inputs and learn
    to get no probability. ``<|endoftext|>`` starts, ends and pads, as in GPT-2. Attention uses
    PyTorch's fused ``scaled_dot_product_attention`` (``"sdpa"``).
    """
    return GPT2Config(
        vocab_size=padded_vocab_size(len(tokenizer)),
        n_positions=seq_length or sizes.seq_length,
        n_embd=sizes.hidden_size,
        n_layer=sizes.num_layers,
        n_head=sizes.num_heads,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        attn_implementation="sdpa",
    )


def roberta_config(tokenizer, sizes, block_size: int) -> RobertaConfig:
    """RoBERTa sized by ``sizes`` (hidden size, layers, heads; feed-forward 4x hidden) for blocks of ``block_size``.

    Positions start after the padding index, as in RoBERTa, so the table holds ``block_size + 2``.
    One token type, as RoBERTa (no next-sentence pairs). Attention uses PyTorch's fused
    ``scaled_dot_product_attention`` (``"sdpa"``), the fast path on a GPU.
    """
    return RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=sizes.hidden_size,
        num_hidden_layers=sizes.num_layers,
        num_attention_heads=sizes.num_heads,
        intermediate_size=4 * sizes.hidden_size,
        max_position_embeddings=block_size + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attn_implementation="sdpa",
    )


def weight_decay_groups(model: torch.nn.Module, weight_decay: float = 0.1) -> list[dict]:
    """Two AdamW parameter groups: weight decay on the weight matrices, none on biases and LayerNorm.

    Decay pulls weights towards zero; a bias or a LayerNorm gain pulled to zero only hurts. As in
    CodeParrot, the embeddings are decayed. Each group also lists its parameter ``names``.
    """
    no_decay_ids = {id(p) for module in model.modules() if isinstance(module, torch.nn.LayerNorm)
                    for p in module.parameters(recurse=False)}
    groups = [{"params": [], "names": [], "weight_decay": weight_decay},
              {"params": [], "names": [], "weight_decay": 0.0}]
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        group = groups[1] if name.endswith("bias") or id(param) in no_decay_ids else groups[0]
        group["params"].append(param)
        group["names"].append(name)
    return groups


def flops_per_token(n_params: int, n_layers: int, hidden_size: int, seq_length: int) -> float:
    """Training FLOPs per token, PaLM's estimate: 6N for the weights (forward 2N, backward 4N) plus
    12·L·d·T for attention's scores and weighted sums over a context of T tokens.

    ``n_params``: the parameters used in matrix products (leave out position embeddings, a lookup;
    a tied input embedding counts, since it is the output layer too).
    """
    return 6 * n_params + 12 * n_layers * hidden_size * seq_length


def matmul_params(model) -> int:
    """Parameters counted by ``flops_per_token``: all but the position embeddings."""
    position = {id(p) for name, p in model.named_parameters() if name.endswith("wpe.weight")}
    return sum(p.numel() for p in model.parameters() if id(p) not in position)


def training_plan(model, steps: int, tokens_per_step: int, seq_length: int, tflops: float = T4_TFLOPS,
                  per_token: float | None = None) -> str:
    """One line: a run's tokens and FLOPs, and how long it should take at ``tflops`` TFLOP/s (a T4's assumed rate).

    ``per_token``: the training FLOPs per token when ``flops_per_token`` of the model does not say it
    (ELECTRA's two models: ``nlp_course.electra.step_flops``).

    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> tiny = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=1000, n_positions=64))
    >>> training_plan(tiny, steps=100, tokens_per_step=1024, seq_length=64).split(";")[0]
    'planned: 100 steps x 1,024 tokens = 102,400 tokens, 1.0e+11 FLOPs'
    """
    if per_token is None:
        per_token = flops_per_token(matmul_params(model), model.config.num_hidden_layers, model.config.hidden_size,
                                    seq_length)
    total = steps * tokens_per_step * per_token
    minutes = total / (tflops * 1e12) / 60
    duration = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
    return (f"planned: {steps:,} steps x {tokens_per_step:,} tokens = {steps * tokens_per_step:,} tokens, "
            f"{total:.1e} FLOPs; at {tflops:g} TFLOP/s (what the course assumes a T4 sustains; an estimate, "
            f"not a measurement) {duration} of training")
