"""Measuring what a model learned: perplexity, classification scores, and where a completion ends.

- ``perplexity(loss)``: exp of a mean loss per token, infinite rather than an ``OverflowError``.
- ``evaluate_lm``: a causal LM's mean loss per predicted token over a dataloader, on every process.
- ``unigram_loss`` and ``pretraining_warnings``: the loss of a model that knows only how often each
  token occurs, the bar a pretrained language model must clear to have learned any context.
- ``compute_scores``: accuracy and F1 (binary for two labels, else macro), with scikit-learn.
- ``tfidf_baseline``: notebook 07's bag of words (TF-IDF of words and word pairs, logistic
  regression), the score a transformer must beat to earn its cost.
- ``learning_warnings``: plain words when a classifier learned nothing.
- ``FunctionEndCriteria`` and ``truncate_at_function_end``: stop a code completion where the function
  ends (a new top-level ``def``, ``class``, decorator, ``if __name__`` or comment).
- ``corpus_perplexity``: a causal LM's perplexity over a corpus done right: weighted by tokens, long
  texts scored with a sliding window, and bits per byte to compare models with different tokenizers;
  ``sliding_windows`` says which tokens each window predicts.
- ``load_metric`` and ``metric_modules_dir``: accuracy, F1, precision and recall as local ``evaluate``
  modules shipped with the package, loaded without the Hub (``evaluate.load("f1")`` needs it).

Taught in: 06_pretraining_gpt2_code (perplexity, stopping), 07_fine_tuning_classification (scores) and
09_evaluation (corpus perplexity, bits per byte, offline metrics).
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
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


def unigram_loss(train_ids, targets, vocab_size: int, max_train_tokens: int = 5_000_000) -> float:
    """Mean cross-entropy (nats) on ``targets`` of token frequencies counted on ``train_ids``, add-one smoothed.

    ``train_ids``: sequences of ids (the first ``max_train_tokens`` are counted); ``targets``: the ids
    the model is scored on (an MLM's masked labels, a causal LM's next tokens).
    """
    counts = torch.ones(vocab_size, dtype=torch.float64)  # add-one: an unseen token is possible, not certain
    seen = 0
    for ids in train_ids:
        ids = torch.as_tensor(ids, dtype=torch.long).flatten()
        counts += torch.bincount(ids, minlength=vocab_size)[:vocab_size].double()
        seen += ids.numel()
        if seen >= max_train_tokens:
            break
    targets = torch.as_tensor(targets, dtype=torch.long).flatten()
    if targets.numel() == 0:
        raise ValueError("unigram_loss() needs at least one target token.")
    return float(-(counts / counts.sum()).log()[targets].mean())


def pretraining_warnings(final_eval_loss: float, unigram: float, initial_eval_loss: float | None,
                         what: str = "The eval loss") -> list[str]:
    """Plain words when a pretrained model's eval loss did not get below the unigram baseline."""
    if final_eval_loss < unigram:
        return []
    start = f" (it started at {initial_eval_loss:.3f})" if initial_eval_loss is not None else ""
    return [f"{what} ended at {final_eval_loss:.3f}{start}, not below {unigram:.3f}, the loss of a unigram "
            "model that only knows how often each token occurs: the model has learned token frequencies, not yet "
            "context. Train longer (--max-steps), on more text, or with a tuned --learning-rate; at toy scale this "
            "is expected."]


def compute_scores(labels, predictions, num_labels: int) -> dict:
    """Accuracy and F1: binary F1 of label 1 for two classes (the second name in alphabetical order), else macro."""
    average = "binary" if num_labels == 2 else "macro"
    return {"accuracy": float(accuracy_score(labels, predictions)),
            "f1": float(f1_score(labels, predictions, average=average, zero_division=0,
                                 labels=list(range(num_labels)) if average == "macro" else None)),
            "f1_average": average}


def tfidf_baseline(train_texts, train_labels, texts, labels, num_labels: int) -> dict:
    """``compute_scores`` of notebook 07's TF-IDF + logistic regression, fitted on the training texts."""
    bag_of_words = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000))
    bag_of_words.fit(list(train_texts), list(train_labels))
    return compute_scores(list(labels), bag_of_words.predict(list(texts)), num_labels)


NEAR_UNIFORM = 0.95  # a final training loss above this share of ln(classes) is no better than guessing


def learning_warnings(final_train_loss: float | None, predictions, num_labels: int, names: list[str]) -> list[str]:
    """Warnings, in plain words with what to try, when a classifier learned nothing.

    Two signs: the last training loss is still near ln(number of classes), the loss of a uniform
    guess (or above it, or not a number); or every prediction on the scored split is one class.
    """
    warnings, uniform = [], math.log(num_labels)
    causes = ("Likely causes: a learning rate too high or too low for this model and data (try --learning-rate "
              "3e-4, then 1e-4 or 1e-3), too few epochs for the size of the data (try --epochs 5), or a tokenizer "
              "made for another language (the course encoder is Spanish; try --model with an encoder for your texts).")
    if final_train_loss is not None and not final_train_loss < NEAR_UNIFORM * uniform:
        warnings.append(f"The training loss ended at {final_train_loss:.3f}, no better than ln({num_labels}) = "
                        f"{uniform:.3f}, the loss of a uniform guess: the model learned nothing. {causes}")
    predicted = set(int(p) for p in predictions)
    if len(predicted) == 1 and num_labels > 1:
        warnings.append(f"Every prediction is the class {names[predicted.pop()]!r}: the model scores as the majority "
                        f"class does and learned nothing about the texts. {causes}")
    return warnings


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


# --------------------------------------------------------------------------------------------
# Perplexity of a corpus, done right
# --------------------------------------------------------------------------------------------
def sliding_windows(n_tokens: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, first)`` per window over ``n_tokens`` ids: the window feeds ids ``[begin, end)`` and
    predicts ``[first, end)``, the tokens no earlier window predicted (transformers' "Perplexity of
    fixed-length models" guide).

    Windows start every ``stride`` tokens and hold ``max_length``. With ``stride < max_length`` each window
    keeps ``max_length - stride`` earlier tokens as context, and every token but the first is predicted
    exactly once. ``stride == max_length`` gives disjoint chunks: a chunk's first token has no context,
    so it is not predicted (``n_tokens`` minus the number of chunks in all).
    """
    if max_length < 2 or not 1 <= stride <= max_length:
        raise ValueError(f"Need max_length >= 2 and 1 <= stride <= max_length, got {max_length} and {stride}.")
    windows, predicted_up_to = [], 0
    for begin in range(0, max(n_tokens - 1, 0), stride):
        end = min(begin + max_length, n_tokens)
        first = max(predicted_up_to, begin + 1)  # a window's first token has no context inside it
        if first < end:
            windows.append((begin, end, first))
        predicted_up_to = end
        if end == n_tokens:
            break
    return windows


def _window_nll(model, windows: list[tuple[list[int], int]], batch_size: int) -> list[float]:
    """Summed negative log-likelihood (nats) of the tokens ``ids[first:]`` of each ``(ids, first)`` window."""
    device, sums = next(model.parameters()).device, []
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.zeros(len(batch), width, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        labels = torch.full_like(input_ids, -100)  # right padding: the real tokens keep their positions
        for row, (ids, first) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
            labels[row, first : len(ids)] = torch.tensor(ids[first:])
        logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
        nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels[:, 1:].to(device), reduction="none")
        sums += nll.sum(dim=1).double().tolist()  # ignored labels (-100) add 0
    return sums


def corpus_perplexity(model, tokenizer, texts, max_length: int | None = None, stride: int | None = None,
                      batch_size: int = 8) -> dict:
    """Perplexity of a causal language model (GPT-2 and the like) over a corpus, weighted by tokens.

    ``perplexity`` is exp of the mean negative log-likelihood per predicted token over the whole corpus
    (``nll``, in nats; ``tokens`` predicted tokens): a long text weighs as many tokens as it has.
    ``mean_of_text_perplexities`` is the mean of each text's own perplexity, what the ``evaluate``
    perplexity metric reports: short texts weigh as much as long ones, so it is here only for contrast.
    ``bits_per_byte`` is the total NLL in bits over the UTF-8 bytes of the texts (``bytes``): unlike a
    perplexity per token, it compares models whose tokenizers cut the text differently.

    Texts are encoded as the tokenizer does by default (a tokenizer that adds a BOS lets the first word be
    predicted; GPT-2's adds none). A text longer than ``max_length`` (default: the model's context,
    ``n_positions`` or ``max_position_embeddings``) is scored with ``sliding_windows``: every ``stride``
    tokens (default ``max_length // 2``), predicting only the new tokens, each once. Masked LMs do not fit:
    they have no next-token likelihood. The model is run in eval mode without gradients, then left in the
    mode it was in.
    """
    context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    max_length = context if max_length is None else max_length
    if max_length is None or (context and max_length > context):
        raise ValueError(f"max_length must be given and at most the model's context ({context}), got {max_length}.")
    stride = max_length // 2 if stride is None else stride
    texts = list(texts)
    encoded = tokenizer(texts, verbose=False)["input_ids"]  # verbose=False: no warning for the long texts
    windows, owners, counts = [], [], [0] * len(texts)
    for index, ids in enumerate(encoded):
        for begin, end, first in sliding_windows(len(ids), max_length, stride):
            windows.append((ids[begin:end], first - begin))
            owners.append(index)
            counts[index] += end - first
    if not windows:
        raise ValueError("corpus_perplexity() needs a text of at least two tokens: nothing is predicted.")
    was_training = model.training
    try:
        with torch.inference_mode():
            window_sums = _window_nll(model.eval(), windows, batch_size)
    finally:
        model.train(was_training)
    nll = [0.0] * len(texts)  # summed over each text's windows
    for index, window_sum in zip(owners, window_sums, strict=True):
        nll[index] += window_sum
    total, n_tokens, n_bytes = sum(nll), sum(counts), sum(len(text.encode("utf-8")) for text in texts)
    return {"perplexity": perplexity(total / n_tokens), "nll": total / n_tokens, "tokens": n_tokens,
            "bits_per_byte": total / math.log(2) / n_bytes, "bytes": n_bytes,
            "mean_of_text_perplexities": statistics.fmean(perplexity(text_nll / count)
                                                          for text_nll, count in zip(nll, counts, strict=True) if count)}


# --------------------------------------------------------------------------------------------
# Metrics that load offline
# --------------------------------------------------------------------------------------------
def metric_modules_dir() -> Path:
    """The folder of the course's ``evaluate`` metric modules (``<name>/<name>.py``), inside the package."""
    return Path(__file__).resolve().parent / "metric_modules"


def load_metric(name: str, **kwargs):
    """``evaluate.load`` of the course's copy of the metric ``name`` (accuracy, f1, precision, recall): no Hub.

    ``evaluate.load("f1")`` downloads the module from the Hub and fails offline; a folder holding
    ``f1/f1.py`` loads from disk, from any working directory. ``evaluate`` copies the script into
    ``HF_MODULES_CACHE`` (``~/.cache/huggingface/modules/evaluate_modules/metrics/<name>/<hash of the
    code>``, read when evaluate is imported) and imports it from there; a second load reuses the copy.
    ``kwargs`` go to ``evaluate.load`` (``config_name="multilabel"`` for lists of 0/1 labels).
    """
    import evaluate  # imported here: the course's training modules import this module and never need it

    available = sorted(path.parent.name for path in metric_modules_dir().glob("*/*.py")
                       if path.stem == path.parent.name)
    if name not in available:
        raise ValueError(f"No course metric module named {name!r}. Available: {', '.join(available)}. Others "
                         f"(BLEU, ROUGE, ...) load from the Hub with evaluate.load(name) when online.")
    return evaluate.load(str(metric_modules_dir() / name), **kwargs)
