"""Checks for notebook 06 (GPT-2 on Python code): exercises 2, 3 and 4.

Exercises 1 and 5 are training runs, answered in words in ``solutions/06_solutions.ipynb``. What is checked
holds in every profile and takes a second: the learner's gradient accumulation (2) on a tiny GPT-2 against the
gradient of the whole batch; the learner's versions of CodeParrot's three further filters (3) on short files
with known verdicts; the learner's count of the batches a resumed run must skip (4).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import numbers

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import call as _call
from nlp_course.exercises.answers import expect_function as _function
from nlp_course.exercises.answers import kind as _kind


def _number(value):
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    return value if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


@contextlib.contextmanager
def _one_thread():
    """A model this small runs faster on one thread than on two (and far faster on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- 2: gradient accumulation
@functools.lru_cache(maxsize=1)
def _tiny_gpt2():
    """A GPT-2 of 16 dimensions without dropout, and a batch of 4 packed sequences of 16 tokens."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    with torch.random.fork_rng():  # leave the learner's global generator as it was
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config)
    ids = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(1))
    return model, ids


def _gradients(model) -> dict:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def _reference(model, ids, rows: slice | None = None, scale: float = 1.0):
    model = copy.deepcopy(model)
    part = ids if rows is None else ids[rows]
    loss = model(input_ids=part, labels=part).loss
    (loss * scale).backward()
    return float(loss.detach()), _gradients(model)


def _norm(grads: dict) -> float:
    return float(sum((g.double() ** 2).sum() for g in grads.values()) ** 0.5)


def _close(a: dict, b: dict, tolerance: float = 1e-4) -> bool:
    return a.keys() == b.keys() and all(
        float((a[k] - b[k]).abs().max()) <= tolerance * (1 + float(b[k].abs().max())) for k in b)


@exercise("06", 2, "gradient accumulation that gives the whole batch's gradient")
def _(answer) -> str:
    name = getattr(answer, "__name__", "accumulated_gradients")
    _function(answer, name, "(model, input_ids, grad_accumulation)")
    base, ids = _tiny_gpt2()
    with _one_thread():
        full_loss, full = _reference(base, ids)
        for steps in (2, 4, 1):
            model = copy.deepcopy(base)
            model.zero_grad(set_to_none=True)
            shown = f"model, input_ids of shape {tuple(ids.shape)}, {steps}"
            loss = _number(_call(answer, name, (model, ids.clone(), steps), shown))
            grads = _gradients(model)
            if not grads:
                raise Wrong(f"after {name}({shown}) the model holds no gradient: call backward on each micro-batch's "
                            "loss (accelerator.backward in the notebook's loop) and leave the gradients in .grad for "
                            "the optimizer step.")
            if not _close(grads, full):
                micro = ids.shape[0] // steps
                ratio = _norm(grads) / _norm(full)
                last = _reference(base, ids, slice(ids.shape[0] - micro, None), 1 / steps)[1]
                last_unscaled = _reference(base, ids, slice(ids.shape[0] - micro, None))[1]
                if _close(grads, last) or _close(grads, last_unscaled):
                    raise Wrong(f"with grad_accumulation={steps} your gradient is the last micro-batch's alone: the "
                                "gradients must add up over the micro-batches, so zero them once per optimizer step, "
                                "not before each micro-batch.")
                if abs(ratio - steps) < 0.01 * steps:
                    raise Wrong(f"with grad_accumulation={steps} your gradient is {ratio:.2f} times the whole batch's: "
                                "backward adds up the micro-batches' gradients, each the gradient of a mean. Divide "
                                f"each micro-batch's loss by {steps}, the number of micro-batches (accelerator.backward "
                                "does it for you when the Accelerator knows gradient_accumulation_steps).")
                raise Wrong(f"with grad_accumulation={steps} your gradient is not the whole batch's (its norm is "
                            f"{ratio:.3f} times the right one). Split input_ids into {steps} equal micro-batches along "
                            f"the first dimension, and backward each one's loss divided by {steps}.")
            if loss is None:
                raise Wrong(f"{name}({shown}) returned {_kind(loss)}: return the batch's mean loss, a number.")
            if abs(loss - full_loss) > 1e-4:
                if abs(loss - full_loss / steps) < 1e-4 and steps > 1:
                    hint = (f"the loss divided by {steps}, the one you backpropagate. Report the mean loss of the "
                            "micro-batches, unscaled, to compare it with a run without accumulation.")
                else:
                    hint = ("the mean of the micro-batches' losses is the whole batch's loss here (every sequence "
                            "is full, so every micro-batch has as many tokens); the notebook's loop logs only the "
                            "last micro-batch's loss, which is noisier.")
                raise Wrong(f"with grad_accumulation={steps} your function returns the loss {loss:.5f}; the batch's "
                            f"is {full_loss:.5f}: {hint}")
    return ("right: with equal micro-batches of full sequences, the sum of the micro-batches' gradients divided by "
            "their number is the gradient of the whole batch, up to rounding. So with GRAD_ACCUMULATION = 2 and half "
            "the BATCH_SIZE each step sees the same tokens and takes the same step: the eval curve should nearly "
            "match. Not exactly: dropout draws other masks, the sums run in another order, and the train loss "
            "logged is one micro-batch's, half as many sequences as before.")


# ---------------------------------------------------------------- 3: CodeParrot's further filters
_HEADER = "import os\nimport sys\n\n"
_BODY = "".join(f"value_{i} = compute({i})\n" for i in range(30))
_TESTS_INSIDE = _HEADER + _BODY.replace("value_3 ", "test_3 ").replace("value_9 ", "test_9 ").replace("value_20 ", "test_20 ")
_ONE_TEST = _HEADER + _BODY * 3 + "# see the test below\n"
_LATE_CONFIG = _HEADER + "".join(_BODY.splitlines(keepends=True)[:6]) + "# the configuration file is read below\n" + _BODY


def _lines(text: str) -> str:
    newlines = text.count("\n")
    return f"{newlines} newlines, so the threshold is int(0.05 x {newlines}) = {int(0.05 * newlines)}"


_CONFIG_OR_TEST = [
    ("a Sphinx configuration file, 'Configuration file' in its first line",
     "# Configuration file for the Sphinx documentation builder.\n" + _BODY, True),
    ("a file whose second line says 'Unit tests for the parser'",
     "#!/usr/bin/env python\n# Unit tests for the parser.\n" + _BODY, True),
    (f"a file with the word 'test' on three of its lines ({_lines(_TESTS_INSIDE)})", _TESTS_INSIDE, True),
    ("ordinary code that never says config or test", _HEADER + _BODY, False),
    (f"a file that says 'test' once ({_lines(_ONE_TEST)})", _ONE_TEST, False),
    (f"a file that says 'configuration file' on its tenth line only, and 'config' nowhere else ({_lines(_LATE_CONFIG)})",
     _LATE_CONFIG, False),
]
_NO_KEYWORDS = [
    ("a file of assignments and calls only", _HEADER + _BODY + "print(value_0)\n", True),
    ("a file with a function", _HEADER + "def area(w, h):\n    return w * h\n", False),
    ("a file with a class", _HEADER + "class Point:\n    x = 0\n", False),
    ("a file with a for loop and no def or class (CodeParrot also looks for 'for ' and 'while ')",
     _HEADER + "for name in os.listdir('.'):\n    print(name)\n", False),
    ("a file with a while loop and no def or class", _HEADER + "while True:\n    break\n", False),
    ("a file with 'defaults = ...' and 'classes = ...' but no def or class statement",
     _HEADER + "defaults = {'a': 1}\nclasses = ['b']\nprint(defaults, classes)\n", True),
]
_FEW_ASSIGNMENTS = [
    ("a file with no '='", _HEADER + "print(os.getcwd())\nprint(sys.argv)\n", True),
    ("a file with exactly four '=' (CodeParrot: fewer than 5)",
     _HEADER + "a = 1\nb = 2\nc = 3\nd = 4\nprint(a, b, c, d)\n", True),
    ("a file with five '='", _HEADER + "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\nprint(a, b, c, d, e)\n", False),
    ("a file with thirty assignments", _HEADER + _BODY, False),
]
_FILTERS = (("is_config_or_test", _CONFIG_OR_TEST,
             "CodeParrot: True if 'unit tests', 'test file' or 'configuration file' appears (any case) in the first 5 "
             "lines, or if 'config' or 'test' occurs more than int(0.05 x the number of newlines) times in the file"),
            ("has_no_keywords", _NO_KEYWORDS,
             "CodeParrot: True if no line contains 'def ', 'class ', 'for ' or 'while ' (any case)"),
            ("has_few_assignments", _FEW_ASSIGNMENTS,
             "CodeParrot: True if the file has at most 4 '=' characters (fewer than 5)"))


@exercise("06", 3, "CodeParrot's config-or-test, no-keywords and few-assignments filters")
def _(answer) -> str:
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        raise Wrong(f"expected the three functions (is_config_or_test, has_no_keywords, has_few_assignments), in "
                    f"that order, got {_kind(answer)}.")
    for function, (name, cases, rule) in zip(answer, _FILTERS, strict=True):
        _function(function, name, "(text)")
        for description, text, expected in cases:
            got = _call(function, name, (text,), f"<{description}>")
            if isinstance(got, dict):
                raise Wrong(f"{name} returned a dict ({got!r:.80}), the style of CodeParrot's script for "
                            "datasets.map: return True or False.")
            if type(got).__name__ not in ("bool", "bool_"):
                raise Wrong(f"{name} returned {_kind(got)} for {description}: return True (drop the file) or False.")
            if bool(got) != expected:
                raise Wrong(f"{name} says {bool(got)} for {description}; expected {expected}. {rule}.")
    return ("right on every file tried. CodeParrot's more-filtered datasets apply the first two filters (and the "
            "config-or-test one's two tests) with a probability of 0.7, so that some such files stay, and drop files "
            "with fewer than 5 '=' always. The signs are crude: 'test' counts in 'latest' and 'contest', and '==' "
            "counts as two assignments.")


# ---------------------------------------------------------------- 4: resuming where the data was
_RESUMES = ((80, 16, 1, 1), (80, 8, 2, 1), (40, 8, 2, 2), (0, 16, 4, 1), (3, 4, 4, 8))


@exercise("06", 4, "the batches a resumed run must skip")
def _(answer) -> str:
    name = getattr(answer, "__name__", "batches_to_skip")
    _function(answer, name, "(step, batch_size, grad_accumulation, num_processes)")
    for step, batch, accumulation, processes in _RESUMES:
        shown = f"step={step}, batch_size={batch}, grad_accumulation={accumulation}, num_processes={processes}"
        got = _number(_call(answer, name, (step, batch, accumulation, processes), shown))
        if got is None or got != int(got):
            raise Wrong(f"{name}({shown}) returned {_kind(got)}: expected a whole number of batches.")
        right = step * accumulation
        if got == right:
            continue
        if got == step and accumulation > 1:
            hint = (f"{step} is one batch per optimizer step; a step is {accumulation} micro-batches, each a batch "
                    "from the DataLoader.")
        elif got == right * batch:
            hint = (f"{int(got)} counts sequences; the DataLoader yields batches of {batch} sequences, and skipping is "
                    "calling next() on it once per batch.")
        elif got == right * processes:
            hint = ("each process reads its own share of the files with its own DataLoader (the CLI packs "
                    "files[rank::world_size]), so each skips its own batches: the number does not grow with the "
                    "processes.")
        elif got in (right - accumulation, right + accumulation, right - 1, right + 1):
            hint = (f"off by one: checkpoint-{step} was saved after {step} whole steps, so exactly {step} x "
                    f"{accumulation} micro-batches were used; the next one is the first of step {step + 1}.")
        else:
            hint = "a step is grad_accumulation batches from this process's DataLoader."
        raise Wrong(f"{name}({shown}) gives {got:g}, expected {right}: {hint}")
    return ("right: a run resumed at step N must draw and drop N x grad_accumulation batches before training, as "
            "nlp_course.clm.train does, or it trains again on data it has seen and never reaches the rest. The "
            "notebook's loop also creates its DataLoader iterators without a generator of their own, so each draws a "
            "seed from the global generator that dropout uses: a resumed run that starts its iterators at other moments "
            "draws other dropout masks from then on. The CLI gives each DataLoader a generator of its own "
            "(nlp_course.clm.build_data).")
