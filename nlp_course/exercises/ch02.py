"""Checks for notebook 02 (pretraining objectives): exercises 2, 3, 4 and 5.

Exercise 1 is a "why" question, answered in words in ``solutions/02_solutions.ipynb``. The checks hold in
every profile: exercise 2 compares the spread of the learner's masked shares with the binomial one for the
number of tokens they report; exercises 3 to 5 run the learner's functions on inputs with known answers.
"""

from __future__ import annotations

import math
import numbers

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import call as _call
from nlp_course.exercises.answers import expect_function as _function
from nlp_course.exercises.answers import kind as _kind

MLM_PROBABILITY = 0.15


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# ---------------------------------------------------------------- 2: the spread of the masked share
@exercise("02", 2, "masked shares over ten seeds against the binomial standard deviation")
def _(answer) -> str:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"expected (shares, real_tokens), got {_kind(answer)}.")
    shares, real_tokens = answer
    if shares is Ellipsis or real_tokens is Ellipsis:
        raise Wrong("not answered yet: replace the ... of the shares and of the number of real tokens.")
    if hasattr(shares, "tolist"):  # a tensor or an array
        shares = shares.tolist()
    shares = [s.item() if hasattr(s, "item") else s for s in shares] if isinstance(shares, (list, tuple)) else shares
    if not isinstance(shares, list) or not all(_real(s) for s in shares):
        raise Wrong(f"expected the shares as a list of numbers, one per seed, got {_kind(shares)}.")
    if len(shares) < 10:
        raise Wrong(f"{len(shares)} shares: the exercise asks for ten seeds, one share each.")
    if hasattr(real_tokens, "item"):
        real_tokens = real_tokens.item()
    if not _real(real_tokens) or real_tokens != int(real_tokens) or real_tokens < 40:
        raise Wrong(f"real_tokens should be the number of tokens that can be masked in the 40 sentences (a whole "
                    f"number, at least one per sentence), got {_kind(real_tokens)}.")
    n = int(real_tokens)
    if max(shares) > 1:
        raise Wrong(f"a share of {max(shares):g} is more than 1: divide the number of masked tokens by the number of "
                    "real tokens.")
    if len(set(shares)) == 1:
        raise Wrong(f"all your shares are {shares[0]:.4f}: each seed must give its own draw. Pass a new generator for "
                    "each seed, torch.Generator().manual_seed(seed), to mask_tokens.")
    if n > 40 * 512:
        raise Wrong(f"{n:,} tokens for 40 sentences is more than they hold: count the real tokens of the 40 sentences, "
                    "(~special).sum(), where `special` marks <s>, </s> and padding.")
    mean = sum(shares) / len(shares)
    sigma = math.sqrt(MLM_PROBABILITY * (1 - MLM_PROBABILITY) / n)  # the binomial std of one share
    if abs(mean - MLM_PROBABILITY) > 5 * sigma / math.sqrt(len(shares)) + 0.002:
        low = mean < MLM_PROBABILITY
        raise Wrong(f"your shares average {mean:.1%}, too far from 15 % for {len(shares)} draws over {n:,} tokens "
                    "(the binomial allows about ±" + f"{3 * sigma / math.sqrt(len(shares)):.1%}). "
                    + ("Divide by the real tokens only: <s>, </s> and padding are never masked, so they do not "
                       "belong in the denominator." if low else
                       "Count as masked the positions whose label is not -100, and divide by every real token."))
    spread = math.sqrt(sum((s - mean) ** 2 for s in shares) / (len(shares) - 1))
    ratio = spread / sigma
    if ratio < 0.3 or ratio > 2.5:
        raise Wrong(f"your shares spread with a standard deviation of {spread:.4f}, but a binomial over {n:,} tokens "
                    f"has sqrt(0.15 · 0.85 / {n:,}) = {sigma:.4f}; ten draws cannot be {ratio:.1f} times that. Do "
                    "the shares and real_tokens come from the same 40 sentences (STATS_SENTENCES = 40)?")
    worst = max(abs(s - MLM_PROBABILITY) for s in shares)
    return (f"right: over {len(shares)} seeds the share ranges from {min(shares):.1%} to {max(shares):.1%}, at most "
            f"{worst:.1%} from 15 %; its standard deviation {spread:.4f} is close to the binomial "
            f"sqrt(p (1 - p) / n) = {sigma:.4f} for n = {n:,} real tokens. The share of one batch is noisy, ±1/sqrt(n): "
            "with 400 sentences it is about three times tighter.")


# ---------------------------------------------------------------- 3: NotNext from the same document
def _documents():
    """Test documents: unique sentences, long and short documents (one with no NotNext candidate at all)."""
    lengths = [12, 9, 3, 2, 1, 15, 7, 10, 11, 8, 13, 4, 12, 9, 14, 6, 10, 12, 5, 11, 9, 10]
    return [[f"documento {d}, frase {i}." for i in range(n)] for d, n in enumerate(lengths)]


@exercise("02", 3, "NSP pairs whose NotNext sentence comes from the same document")
def _(answer) -> str:
    _function(answer, "same_document_nsp_pairs", "(documents, seed=0)")
    documents = _documents()
    where = {sentence: (d, i) for d, doc in enumerate(documents) for i, sentence in enumerate(doc)}
    shown = "documents of 1 to 15 sentences, seed=0"
    try:
        pairs = _call(answer, "same_document_nsp_pairs", (documents,), shown, seed=0)
    except Wrong as wrong:
        if "IndexError" not in str(wrong):
            raise
        raise Wrong(f"{str(wrong).rstrip('.')}. In a document of two or three sentences some sentences have no other sentence two or "
                    "more positions away: give those an IsNext pair, or no pair.") from None
    if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
        raise Wrong(f"same_document_nsp_pairs returned {_kind(pairs)}: expected a list of dicts, as nsp_pairs returns.")
    keys = {"sentence_a", "sentence_b", "next_sentence_label"}
    for pair in pairs:
        if not keys <= set(pair):
            raise Wrong(f"a pair has the keys {sorted(pair)}: each needs sentence_a, sentence_b and next_sentence_label, "
                        "as nsp_pairs gives them.")
    for pair in pairs:
        a, b = pair["sentence_a"], pair["sentence_b"]
        if a not in where or b not in where:
            raise Wrong(f"the pair ({a!r}, {b!r}) holds a sentence that is not in the documents given.")
    kinds = {(pair["next_sentence_label"], where[pair["sentence_b"]] == (where[pair["sentence_a"]][0],
                                                                         where[pair["sentence_a"]][1] + 1))
             for pair in pairs}
    if (1, True) in kinds and (0, False) in kinds and (0, True) not in kinds:
        raise Wrong("your labels are swapped: BertForPreTraining reads 0 as IsNext (B follows A) and 1 as NotNext.")
    seen_a = {}
    counts = {0: 0, 1: 0}
    for pair in pairs:
        a, b, label = pair["sentence_a"], pair["sentence_b"], pair["next_sentence_label"]
        if label not in (0, 1):
            raise Wrong(f"label {label!r}: BertForPreTraining's labels are 0 (IsNext) and 1 (NotNext).")
        (da, ia), (db, ib) = where[a], where[b]
        counts[int(label)] += 1
        seen_a[(da, ia)] = seen_a.get((da, ia), 0) + 1
        if label == 0 and (da, ib) != (db, ia + 1):
            raise Wrong(f"({a!r}, {b!r}) is labelled 0 (IsNext), but B is not the sentence right after A.")
        if label == 1:
            if db != da:
                raise Wrong(f"({a!r}, {b!r}) is NotNext with B from another document: this exercise draws the NotNext "
                            "sentence from A's own document.")
            if ib == ia + 1:
                raise Wrong(f"({a!r}, {b!r}) is labelled 1 (NotNext), but B is the sentence right after A: draw from "
                            "the sentences at least two positions away.")
            if abs(ib - ia) < 2:
                raise Wrong(f"({a!r}, {b!r}) is NotNext with B {'A itself' if ib == ia else 'the sentence before A'}: "
                            "draw from the sentences at least two positions away from A, before or after it.")
    for (d, i), times in seen_a.items():
        if i == len(documents[d]) - 1:
            raise Wrong(f"the last sentence of document {d} is an A: only sentences that have a next one make pairs.")
        if times > 1:
            raise Wrong(f"sentence {i} of document {d} is the A of {times} pairs: one pair per sentence, as nsp_pairs.")
    eligible = [(d, i) for d, doc in enumerate(documents) for i in range(len(doc) - 1) if i + 2 < len(doc)]
    skipped = [key for key in eligible if key not in seen_a]
    if skipped:
        d, i = skipped[0]
        raise Wrong(f"sentence {i} of document {d} makes no pair, though it has a next sentence and another two "
                    "positions after it: every such sentence gives one pair, IsNext or NotNext.")
    total = counts[0] + counts[1]
    if not 0.25 <= counts[1] / total <= 0.75:
        raise Wrong(f"{counts[1]} of your {total} pairs are NotNext: half of them should be, drawn at random "
                    "(rng.random() < 0.5).")
    again = _call(answer, "same_document_nsp_pairs", (documents,), shown, seed=0)
    if again != pairs:
        raise Wrong("two calls with seed=0 gave different pairs: draw every choice from random.Random(seed), as "
                    "nsp_pairs does, so that the pairs can be rebuilt.")
    other = _call(answer, "same_document_nsp_pairs", (documents,), "documents, seed=1", seed=1)
    if other == pairs:
        raise Wrong("seed=0 and seed=1 gave the same pairs: the seed should drive the random choices.")
    return (f"right: {counts[0]} IsNext and {counts[1]} NotNext pairs, every NotNext from A's own document, two or "
            "more sentences away. The task gets harder: a sentence from the same document shares its topic and its "
            "words, so the model cannot answer from the topic alone, which is what made BERT's NSP easy (ALBERT's "
            "sentence-order prediction goes one step further).")


# ---------------------------------------------------------------- 4: sampling with a temperature
@exercise("02", 4, "sampling the generator's tokens with a temperature")
def _(answer) -> str:
    import torch

    _function(answer, "sample_with_temperature", "(logits, temperature, generator)")
    row = torch.tensor([2.0, 1.0, 0.0, -1.0, -3.0])
    logits = row.repeat(20_000, 1)
    for temperature in (0.5, 2.0, 1.0):
        shown = f"logits of shape {tuple(logits.shape)}, temperature={temperature}, generator"
        got = _call(answer, "sample_with_temperature", (logits, temperature, torch.Generator().manual_seed(0)), shown)
        got = torch.as_tensor(got)
        if got.shape == logits.shape and got.is_floating_point():
            raise Wrong(f"sample_with_temperature({shown}) returned a float tensor of the logits' shape: those look like "
                        "probabilities. Sample token ids from them, e.g. torch.multinomial or Categorical(...).sample().")
        if tuple(got.shape) != tuple(logits.shape[:-1]):
            raise Wrong(f"sample_with_temperature({shown}) returned shape {tuple(got.shape)}: expected "
                        f"{tuple(logits.shape[:-1])}, one token id per position (the logits' shape without the vocabulary).")
        if got.is_floating_point() or got.min() < 0 or got.max() >= row.numel():
            raise Wrong(f"sample_with_temperature({shown}) should return token ids, whole numbers from 0 to "
                        f"{row.numel() - 1}; got values from {got.min().item()} to {got.max().item()}.")
        frequencies = torch.bincount(got.flatten(), minlength=row.numel()).float() / got.numel()
        right = (row / temperature).softmax(-1)
        if (frequencies - right).abs().max() < 0.02:
            continue
        if frequencies.max() == 1:
            raise Wrong(f"at temperature {temperature} every sample is token {frequencies.argmax().item()}: that is the "
                        "argmax. ELECTRA's generator samples, softmax(logits / T), so that its tokens vary.")
        if (frequencies - (row * temperature).softmax(-1)).abs().max() < 0.02:
            raise Wrong(f"at temperature {temperature} your samples follow softmax(logits × T): divide the logits by the "
                        "temperature, softmax(logits / T); a high T flattens the distribution, a low T sharpens it.")
        if (frequencies - row.softmax(-1)).abs().max() < 0.02:
            raise Wrong(f"at temperature {temperature} your samples follow softmax(logits), as at T = 1: the temperature "
                        "is not used. Divide the logits by it before the softmax.")
        raise Wrong(f"at temperature {temperature} your token frequencies {[round(f, 3) for f in frequencies.tolist()]} "
                    f"are not those of softmax(logits / T) = {[round(p, 3) for p in right.tolist()]}.")
    batched = torch.randn(2, 6, 50, generator=torch.Generator().manual_seed(1))
    got = _call(answer, "sample_with_temperature", (batched, 0.7, torch.Generator().manual_seed(0)),
                "logits of shape (2, 6, 50), temperature=0.7, generator")
    if tuple(torch.as_tensor(got).shape) != (2, 6):
        raise Wrong(f"for logits of shape (2, 6, 50) (batch, positions, vocabulary) you return shape "
                    f"{tuple(torch.as_tensor(got).shape)}: expected (2, 6). Sample over the last dimension only.")
    return ("right: softmax(logits / T), then a draw. At T = 0.5 a trained generator nearly always picks its top guess: "
            "more of its samples are the original token, fewer positions are replaced, and the replacements are the "
            "most plausible ones. At T = 2.0 it samples far-fetched tokens: more replacements, easy to spot. The "
            "discriminator learns most from replacements that are plausible but wrong.")


# ---------------------------------------------------------------- 5: two spans, two sentinels
def _two_spans(words, spans):
    source, target, position = [], [], 0
    for n, (start, end) in enumerate(spans):
        source += words[position:start] + [f"<extra_id_{n}>"]
        target += [f"<extra_id_{n}>"] + words[start:end]
        position = end
    source += words[position:]
    target.append(f"<extra_id_{len(spans)}>")
    return " ".join(source), " ".join(target)


@exercise("02", 5, "T5 span corruption with two spans")
def _(answer) -> str:
    _function(answer, "corrupt_two_spans", "(words, spans)")
    words = "El agua del río llegó a la ciudad durante la noche".split()
    cases = [(words, [(1, 3), (6, 8)]), (words, [(0, 2), (9, 11)]), (words, [(4, 5), (7, 8)]),
             ("Compró un litro de leche".split(), [(1, 2), (3, 5)])]
    for case_words, spans in cases:
        shown = f"{case_words!r}, spans={spans}"
        got = _call(answer, "corrupt_two_spans", (list(case_words), [tuple(s) for s in spans]), shown)
        if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(isinstance(g, str) for g in got):
            raise Wrong(f"corrupt_two_spans({shown}) returned {_kind(got)}: expected (source, target), two strings.")
        right = _two_spans(case_words, spans)
        if tuple(got) == right:
            continue
        source, target = got
        if source == right[0] and target == right[1].rsplit(" ", 1)[0]:
            raise Wrong(f"your target {target!r} lacks the closing sentinel: T5 ends the target with one more, "
                        f"{right[1].rsplit(' ', 1)[1]}, after the last span.")
        if "<extra_id_1>" not in source:
            raise Wrong(f"your source {source!r} does not number its sentinels: the first span becomes <extra_id_0>, "
                        "the second <extra_id_1>, and the target uses the same ones.")
        inclusive = [(s, e + 1) for s, e in spans]
        if tuple(got) == _two_spans(case_words, inclusive):
            raise Wrong(f"corrupt_two_spans({shown}) removes one word too many per span: spans are (start, end) with end "
                        "excluded, like a Python slice words[start:end].")
        raise Wrong(f"corrupt_two_spans({shown}) returned\n  source {source!r}\n  target {target!r}\nexpected\n  source "
                    f"{right[0]!r}\n  target {right[1]!r}. (Removing the first span shifts the positions of the "
                    "second: work from the original words, or from the end.)")
    return ("right: each span becomes its own sentinel in the input, and the target lists each sentinel with its "
            "span, closed by one more sentinel. The target is short, only the missing words, which is what makes "
            "T5's pretraining cheap: the decoder predicts about 15 % of the tokens, not the whole text.")
