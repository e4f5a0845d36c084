"""Checks for notebook 08 (fine-tuning a GPT-2, decoding): exercises 6, 7 and 8, decoding by hand.

Exercises 1 to 5 are experiments with a trained model whose numbers depend on the run: their answers
are in ``solutions/08_solutions.ipynb``, in words, with the numbers measured at toy scale.
"""

from __future__ import annotations

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import call as _call
from nlp_course.exercises.answers import expect_function as _function
from nlp_course.exercises.answers import kind as _kind


def _vector(result, name: str, shown_args: str, size: int, what: str):
    """The learner's result as a 1-D float64 tensor of ``size`` values, or Wrong."""
    import torch

    try:
        values = torch.as_tensor(result, dtype=torch.float64).detach().cpu()
    except Exception:  # not numbers
        raise Wrong(f"{name}({shown_args}) returned {_kind(result)}: expected {what}, a 1-D tensor of {size} "
                    "numbers.") from None
    if values.shape != (size,):
        raise Wrong(f"{name}({shown_args}) returned shape {tuple(values.shape)}: expected {what}, one value per "
                    f"token of the vocabulary, shape ({size},).")
    return values


def _show(values) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" for v in values) + "]"


# ---------------------------------------------------------------- 6: temperature
@exercise("08", 6, "temperature by hand")
def _(answer) -> str:
    import torch

    _function(answer, "with_temperature", "(logits, temperature)")
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    results = {}
    for temperature in (1.0, 0.5, 2.0, 0.7):
        shown = f"{_show(logits)}, {temperature}"
        got = _vector(_call(answer, "with_temperature", (logits.clone(), temperature), shown), "with_temperature",
                      shown, 4, "probabilities")
        right = torch.softmax(logits.double() / temperature, dim=-1)
        total = float(got.sum())
        if abs(total - 1) > 1e-4 or bool((got < 0).any()):
            raise Wrong(f"with_temperature({shown}) returned {_show(got)}, which sums to {total:.3g}: return "
                        "probabilities, the softmax of the logits divided by the temperature.")
        if torch.allclose(got, torch.softmax(logits.double() * temperature, dim=-1), atol=1e-4) and temperature != 1:
            raise Wrong(f"with_temperature({shown}) returned {_show(got)}: you multiplied the logits by T, so T = "
                        f"{temperature} came out {'sharper' if temperature > 1 else 'flatter'} than T = 1. Divide "
                        "them by T: T < 1 sharpens, T > 1 flattens.")
        if not torch.allclose(got, right, atol=1e-4):
            raise Wrong(f"with_temperature({shown}) returned {_show(got)}, expected {_show(right)}: "
                        "softmax(logits / temperature).")
        results[temperature] = got
    return (f"right: softmax(logits / T). On logits {_show(logits)} the top token gets {results[0.5][0]:.2f} at T = "
            f"0.5, {results[1.0][0]:.2f} at T = 1 and {results[2.0][0]:.2f} at T = 2: the order of the tokens never "
            "changes, only how much the most probable ones dominate. T -> 0 is greedy search.")


# ---------------------------------------------------------------- 7: top-p
def _nucleus(probs, p: float) -> set[int]:
    import torch

    values, order = torch.sort(probs.double(), descending=True)
    before = torch.cumsum(values, 0) - values  # the probability of the tokens ranked above each one
    return {int(i) for i in order[before < p - 1e-12]}  # keep a token while the ones above it hold less than p


def _ids(result, name: str, shown: str, size: int) -> set[int]:
    import torch

    if isinstance(result, torch.Tensor):
        if result.dtype == torch.bool:
            raise Wrong(f"{name}({shown}) returned a mask of booleans: return the ids of the kept tokens, e.g. "
                        "mask.nonzero().flatten().tolist().")
        result = result.flatten().tolist()
    if isinstance(result, int | float) or not hasattr(result, "__iter__"):
        raise Wrong(f"{name}({shown}) returned {_kind(result)}: expected the ids of the kept tokens, a list of ints "
                    "(not how many there are).")
    ids = list(result)
    if not all(isinstance(i, int) or (hasattr(i, "__index__") and not isinstance(i, bool)) for i in ids):
        raise Wrong(f"{name}({shown}) returned {ids[:8]}: expected token ids, whole numbers that index probs "
                    "(not probabilities).")
    ids = [int(i) for i in ids]
    if any(not 0 <= i < size for i in ids):
        raise Wrong(f"{name}({shown}) returned {ids[:8]}: a token id is an index into probs, from 0 to {size - 1}.")
    if len(set(ids)) != len(ids):
        raise Wrong(f"{name}({shown}) returned the id {max(ids, key=ids.count)} more than once: each kept token once.")
    return set(ids)


@exercise("08", 7, "top-p (nucleus) filtering by hand")
def _(answer) -> str:
    import torch

    _function(answer, "top_p_tokens", "(probs, p)")
    generator = torch.Generator().manual_seed(8)
    realistic = torch.softmax(torch.randn(2000, generator=generator) * 2.5, dim=-1)
    cases = ((torch.tensor([0.5, 0.3, 0.15, 0.05]), 0.9), (torch.tensor([0.1, 0.6, 0.3]), 0.8),
             (torch.tensor([0.25, 0.5, 0.125, 0.0625, 0.0625]), 0.75), (torch.tensor([0.1, 0.6, 0.3]), 0.2),
             (realistic, 0.9))
    for probs, p in cases:
        shown = (_show(probs) if len(probs) < 10 else f"<{len(probs)} probabilities>") + f", {p}"
        got = _ids(_call(answer, "top_p_tokens", (probs.clone(), p), shown), "top_p_tokens", shown, len(probs))
        right = _nucleus(probs, p)
        if got == right:
            continue
        held = float(probs[sorted(got)].sum()) if got else 0.0
        if not got:
            raise Wrong(f"top_p_tokens({shown}) kept no token: top-p always keeps at least the most probable one, "
                        "even when it alone holds more than p.")
        order = torch.argsort(probs, descending=True).tolist()
        in_id_order = int((torch.cumsum(probs.double(), 0) < p - 1e-12).sum()) + 1
        if got == set(range(min(in_id_order, len(probs)))):
            raise Wrong(f"top_p_tokens({shown}) returned {sorted(got)[:8]}: the first tokens in the order of their "
                        "ids. Sort the probabilities in decreasing order first, then add them up.")
        if got == set(range(len(right))) and got != right:
            raise Wrong(f"top_p_tokens({shown}) returned {sorted(got)}: those are positions in the sorted order. "
                        "Return the token ids, the indices into probs (torch.sort returns them).")
        if got < right and held < p:
            raise Wrong(f"top_p_tokens({shown}) kept {len(got)} tokens holding {held:.3g}, less than p = {p}: keep "
                        "the token that makes the total reach p too (the smallest set holding at least p).")
        if got > right and all(i in got for i in order[: len(right)]):
            raise Wrong(f"top_p_tokens({shown}) kept {len(got)} tokens, one or more too many: "
                        f"{len(right)} of them already hold {float(probs[sorted(right)].sum()):.3g} >= p = {p}, and "
                        "a total equal to p is enough.")
        if got == set(range(len(got))) or not got <= set(order[: len(got)]):
            raise Wrong(f"top_p_tokens({shown}) returned {sorted(got)[:8]}: not the most probable tokens. Sort "
                        "the probabilities in decreasing order first, then add them up.")
        raise Wrong(f"top_p_tokens({shown}) returned {sorted(got)[:8]}, expected {sorted(right)[:8]}: the smallest "
                    "set of most probable tokens whose probabilities add up to at least p.")
    return (f"right: on the check's spread-out distribution over 2,000 tokens top-p = 0.9 keeps "
            f"{len(_nucleus(realistic, 0.9))} of them; on a confident one, one or two. That is its point: unlike "
            "top-k, the number of candidates follows the model's certainty.")


# ---------------------------------------------------------------- 8: the repetition penalty
@exercise("08", 8, "the repetition penalty by hand")
def _(answer) -> str:
    import torch

    _function(answer, "penalise_repeats", "(logits, previous_ids, penalty)")
    cases = ((torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0, 0.0]), [0, 1, 1, 3, 5], 1.3),
             (torch.tensor([4.0, 3.0, -2.0, 1.5]), [3, 2, 3, 3], 2.0),
             (torch.tensor([1.0, -1.0, 2.0]), [], 1.5))
    for logits, previous, penalty in cases:
        shown = f"{_show(logits)}, {previous}, {penalty}"
        given = logits.clone()
        try:
            result = answer(given, list(previous), penalty)
        except Exception as err:  # the learner's code: any error becomes a sentence
            raise Wrong(f"penalise_repeats({shown}) raised {type(err).__name__}: {err}") from None
        if result is None and not torch.equal(given, logits):
            raise Wrong(f"penalise_repeats({shown}) changed the logits in place and returned None: return the new "
                        "logits (generate uses what the processor returns).")
        if result is None:
            raise Wrong(f"not answered yet: penalise_repeats({shown}) returned None. Write the body of "
                        "penalise_repeats in place of the ... and return the new logits.")
        got = _vector(result, "penalise_repeats", shown, len(logits), "the new logits")
        right = logits.double().clone()
        seen = sorted(set(previous))
        right[seen] = torch.where(right[seen] < 0, right[seen] * penalty, right[seen] / penalty)
        if torch.allclose(got, right, atol=1e-5):
            continue
        before = logits.double()
        if torch.allclose(got.sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-4) and bool((got >= 0).all()):
            raise Wrong(f"penalise_repeats({shown}) returned probabilities (they sum to 1): return the logits, "
                        "changed; generate applies the softmax later.")
        for i in range(len(logits)):
            if abs(float(got[i]) - float(right[i])) <= 1e-5:
                continue
            old, new, want = float(before[i]), float(got[i]), float(right[i])
            if i not in seen:
                raise Wrong(f"penalise_repeats({shown}): token {i} is not in the text, yet its logit went from {old:g} "
                            f"to {new:.3g}. Only the tokens of previous_ids are penalised.")
            if old < 0 and abs(new - old / penalty) < 1e-5:
                raise Wrong(f"penalise_repeats({shown}): token {i}'s logit was {old:g} and you made it {new:.3g}. "
                            f"Dividing a negative logit by {penalty} brings it closer to 0, which makes the repeated "
                            f"token *more* likely: multiply negative logits by the penalty ({want:.3g}).")
            count = previous.count(i)
            if count > 1 and (abs(new - old / penalty**count) < 1e-5 or abs(new - old * penalty**count) < 1e-5):
                raise Wrong(f"penalise_repeats({shown}): token {i} occurs {count} times in previous_ids and you "
                            f"penalised it {count} times ({old:g} -> {new:.3g}). The penalty applies once per distinct "
                            f"token, however often it occurs: {want:.3g}.")
            if old > 0 and abs(new - old * penalty) < 1e-5:
                raise Wrong(f"penalise_repeats({shown}): token {i}'s logit was {old:g} and you made it {new:.3g}: "
                            f"multiplying a positive logit makes the token more likely. Divide it ({want:.3g}).")
            if abs(new - (old - penalty)) < 1e-5:
                raise Wrong(f"penalise_repeats({shown}): you subtracted the penalty from token {i}'s logit "
                            f"({old:g} -> {new:.3g}). repetition_penalty divides a positive logit by it and multiplies "
                            f"a negative one: {want:.3g}.")
            raise Wrong(f"penalise_repeats({shown}): token {i}'s logit went from {old:g} to {new:.3g}, expected "
                        f"{want:.3g}: divide by the penalty if positive, multiply if negative.")
    return ("right: a repeated token's logit moves towards less likely whatever its sign, and each token is "
            "penalised once. This is transformers' RepetitionPenaltyLogitsProcessor, the rule of the CTRL paper; "
            "no_repeat_ngram_size is the blunt alternative, which forbids a repeated n-gram outright.")
