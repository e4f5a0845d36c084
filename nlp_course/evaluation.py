"""Measuring what a model learned: perplexity, classification scores, and where a completion ends.

- ``perplexity(loss)``: exp of a mean loss per token, infinite rather than an ``OverflowError``.
- ``evaluate_lm``: a causal LM's mean loss per predicted token over a dataloader, on every process.
- ``compute_scores``: accuracy and F1 (binary for two labels, else macro), with scikit-learn.
- ``FunctionEndCriteria`` and ``truncate_at_function_end``: stop a code completion where the function
  ends (a new top-level ``def``, ``class``, decorator, ``if __name__`` or comment).

Taught in: 06_pretraining_gpt2_code (perplexity, stopping) and 07_fine_tuning_classification (scores).
"""

from __future__ import annotations

import math
import re

import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import StoppingCriteria


def perplexity(loss: float) -> float:
    """``exp(loss)`` for a mean cross-entropy per token in nats; ``inf`` when that overflows a float."""
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")


def evaluate_lm(model, dataloader, accelerator) -> tuple[float, float]:
    """Mean loss per predicted token over ``dataloader`` on every process, and its perplexity.

    Each process sums its own losses and token counts; the sums are added over processes, so the
    result is the same whether each process holds a share of the evaluation set or all of it. A
    loss too large for ``exp`` gives an infinite perplexity, not an ``OverflowError``.
    """
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # summed loss, predicted tokens
    with torch.no_grad():
        for batch in dataloader:
            ids = batch["input_ids"].to(accelerator.device)
            loss = model(input_ids=ids, labels=ids).loss  # mean over the shifted tokens of the batch
            n = ids[:, 1:].numel()
            total += torch.stack([loss.double() * n, torch.tensor(n, dtype=torch.float64, device=total.device)])
    model.train()
    total = accelerator.reduce(total, reduction="sum")
    if total[1] == 0:
        raise ValueError("The evaluation set is empty: nothing to evaluate.")
    loss = (total[0] / total[1]).item()
    return loss, perplexity(loss)


def compute_scores(labels, predictions, num_labels: int) -> dict:
    """Accuracy and F1: binary F1 of label 1 for two classes (the second name in alphabetical order), else macro."""
    average = "binary" if num_labels == 2 else "macro"
    return {"accuracy": float(accuracy_score(labels, predictions)),
            "f1": float(f1_score(labels, predictions, average=average, zero_division=0,
                                 labels=list(range(num_labels)) if average == "macro" else None)),
            "f1_average": average}


# --------------------------------------------------------------------------------------------
# Generation: stop at the end of the function
# --------------------------------------------------------------------------------------------
# A line that starts at column 0 with one of these begins something new (the function or block the
# completion was writing is over). Decorators start a new definition too.
FUNCTION_END = re.compile(r"\n(?=(?:async\s+def|def|class)\s|if\s+__name__\b|#|@)")


def truncate_at_function_end(completion: str) -> str:
    """The completion up to (not including) the first line that begins a new top-level block.

    Only boundaries after a newline count, so a completion that itself starts with ``def`` keeps it.
    """
    match = FUNCTION_END.search(completion)
    return completion[: match.start() + 1] if match else completion


class FunctionEndCriteria(StoppingCriteria):
    """Stop each sequence of a batch once its completion has crossed the end of the function.

    ``prompt_length`` is the number of prompt tokens (``inputs["input_ids"].shape[1]``): only the
    tokens after it are decoded and searched. The boundary itself is generated, so cut the decoded
    completion with ``truncate_at_function_end``.
    """

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        completions = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :], skip_special_tokens=True)
        done = [FUNCTION_END.search(text) is not None for text in completions]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
