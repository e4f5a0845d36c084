"""Checks for notebook 01 (NLP concepts): every exercise has one.

Exercises 1 and 4 ask for numbers of the toy profile, which the checks recompute from the course's own
corpus with the notebook's split (10 % held out, seed 42). Exercises 2, 3, 5 and 6 are checked on
properties that hold in every profile: the learner's pairs of words, functions, or tokenizer. The "why"
halves of the exercises are answered in ``solutions/01_solutions.ipynb``.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections import Counter

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import call as _call
from nlp_course.exercises.answers import expect_function as _function
from nlp_course.exercises.answers import kind as _kind

SEED = 42  # the notebook's knobs
HELD_OUT = 0.1
MIN_WORD_COUNT = 2
SMOOTHING_KS = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _word_tokenize(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


@functools.lru_cache(maxsize=1)
def _toy_docs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The toy profile's training and held-out documents, split as section 1 splits them."""
    from nlp_course.data import load_corpus

    splits = load_corpus("corpus_es").train_test_split(test_size=HELD_OUT, seed=SEED)
    return tuple(splits["train"]["text"]), tuple(splits["test"]["text"])


def _sentences(docs) -> list[str]:
    return [line for doc in docs for line in doc.splitlines() if line.strip()]


# ---------------------------------------------------------------- 1: vocabulary size and sequence length
@functools.cache
def _wordpiece_lengths(vocab_size: int) -> tuple[float, float, float]:
    """Section 1's WordPiece at ``vocab_size`` on the toy split: tokens per held-out sentence, per document,
    and the unknown rate of the held-out documents."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    train, held = _toy_docs()
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    wordpiece.train_from_iterator(list(train), trainer=trainer)
    per_sentence = [len(wordpiece.encode(s).tokens) for s in _sentences(held)]
    ids = [i for doc in held for i in wordpiece.encode(doc).ids]
    unknown = ids.count(wordpiece.token_to_id("[UNK]")) / len(ids)
    per_doc = sum(len(wordpiece.encode(doc).tokens) for doc in held) / len(held)
    return sum(per_sentence) / len(per_sentence), per_doc, unknown


def _near(value: float, right: float) -> bool:
    # WordPiece training breaks ties between equally frequent pairs in no fixed order: two trainings on the same
    # text can differ by a few entries, and the mean length by about 0.1 %. 1 % is far from every wrong answer.
    return abs(value - right) <= max(0.06, 0.01 * abs(right))


@exercise("01", 1, "tokens per held-out sentence with SUBWORD_VOCAB = 300 and 8,000 (toy profile)")
def _(answer) -> str:
    if not isinstance(answer, dict):
        raise Wrong(f"expected a dict {{300: tokens per sentence, 8000: tokens per sentence}}, got {_kind(answer)}.")
    answer = {int(k) if isinstance(k, str) and k.replace("_", "").isdigit() else k: v for k, v in answer.items()}
    if set(answer) != {300, 8000}:
        raise Wrong(f"expected the keys 300 and 8000 (the two vocabulary sizes), got {sorted(answer, key=str)}.")
    for size, value in answer.items():
        if value is Ellipsis:
            raise Wrong(f"not answered yet: the value for {size} is still ... .")
        if not _real(value):
            raise Wrong(f"the value for {size} should be a number (mean tokens per held-out sentence), got {_kind(value)}.")
    if answer[300] < answer[8000]:
        raise Wrong(f"your numbers are the wrong way round ({answer[300]:.1f} tokens at 300, {answer[8000]:.1f} at "
                    "8,000): a smaller vocabulary has fewer whole words, so it cuts sentences into more pieces.")
    for size in (300, 8000):
        right, per_doc, _ = _wordpiece_lengths(size)
        value = answer[size]
        if _near(value, right):
            continue
        if _near(value, right + 2):
            raise Wrong(f"{value:.1f} at {size} counts [CLS] and [SEP]: section 6 attached a post-processor to "
                        "`wordpiece`. Rerun section 1 from its first cell (or use encode(s, add_special_tokens=False)).")
        if _near(value, _wordpiece_lengths(2000)[0]):
            raise Wrong(f"{value:.1f} is what the notebook's own SUBWORD_VOCAB = 2,000 gives: set SUBWORD_VOCAB = {size} "
                        "in the knobs cell and rerun the WordPiece training cell before measuring.")
        if _near(value, per_doc):
            raise Wrong(f"{value:.1f} at {size} is the mean per held-out document: measure per sentence "
                        "(`heldout_sentences`, one line each), as section 1 does.")
        raise Wrong(f"{value:.1f} tokens per sentence at {size} is not what section 1's measurement gives in the "
                    "toy profile: train the WordPiece of section 1 on `train_docs` with vocab_size="
                    f"{size}, then take np.mean([len(wordpiece.encode(s).tokens) for s in heldout_sentences]).")
    (small, _, unk_small), (large, _, unk_large) = _wordpiece_lengths(300), _wordpiece_lengths(8000)
    return (f"right: {small:.1f} tokens per held-out sentence at 300 against {large:.1f} at 8,000: 27 times the "
            "vocabulary only cuts the length to "
            f"{large / small:.0%}. "
            f"The unknown rate is {unk_small:.1%} at 300 and {unk_large:.1%} at 8,000: a WordPiece keeps every "
            "character of its training text, so only characters it never saw are unknown, whatever the size.")


# ---------------------------------------------------------------- 2: words that strip_accents merges
_HINT_PAIRS = {frozenset(p) for p in (("el", "él"), ("si", "sí"), ("año", "ano"))}


@functools.lru_cache(maxsize=1)
def _corpus_words() -> frozenset[str]:
    from nlp_course.data import course_file

    return frozenset(re.findall(r"\w+", course_file("corpus_es").read_text(encoding="utf-8").lower()))


@exercise("01", 2, "Spanish words that strip_accents=True makes the same")
def _(answer) -> str:
    from tokenizers import normalizers

    if not isinstance(answer, (list, tuple, set)) or not all(isinstance(p, (list, tuple)) for p in answer):
        raise Wrong(f"expected a list of pairs of words, like [('el', 'él'), ...], got {_kind(answer)}.")
    stripped = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    cased = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    for pair in answer:
        if len(pair) != 2 or not all(isinstance(w, str) and w.strip() for w in pair):
            raise Wrong(f"{pair!r} is not a pair of words: each item should be two strings, like ('el', 'él').")
        a, b = pair
        if a == b:
            raise Wrong(f"{pair!r}: the two words of a pair must differ, in their accents or tilde.")
        if stripped.normalize_str(a) != stripped.normalize_str(b):
            raise Wrong(f"{a!r} and {b!r} stay different with strip_accents=True ({stripped.normalize_str(a)!r} vs "
                        f"{stripped.normalize_str(b)!r}): only accents, tildes and diaereses are removed.")
        if cased.normalize_str(a) == cased.normalize_str(b):
            raise Wrong(f"{a!r} and {b!r} differ only in case: lowercase=True already merges them. The exercise asks "
                        "which words strip_accents=True merges on top of that.")
    new = {frozenset(p) for p in answer} - _HINT_PAIRS
    if len(new) < 3:
        raise Wrong(f"{len(new)} pair(s) beyond the hint's el/él, si/sí, año/ano: find at least three more (notebook 03, "
                    "section 1, lists the collisions of the whole corpus; look at question words and verb forms).")
    in_corpus = sum(1 for pair in new if all(w.lower() in _corpus_words() for w in pair))
    return (f"right: every pair becomes one token once accents are stripped ({in_corpus} of your {len(new)} new pairs "
            "have both words in the course corpus). Accents in Spanish carry grammar (qué / que, está / esta, "
            "él / el) and the tilde is a letter (año / ano): a Spanish tokenizer keeps them, strip_accents=False.")


# ---------------------------------------------------------------- 3: linear interpolation
_SENTENCES = [s.split() for s in ("yo quiero pan", "yo quiero agua", "tú quieres pan", "yo quiero pan con agua",
                                  "tú quieres agua", "ella quiere pan", "yo como pan")]


@functools.lru_cache(maxsize=1)
def _tiny_models():
    from nlp_course.ngram import NGramLanguageModel

    return tuple(NGramLanguageModel(n=n).fit(_SENTENCES) for n in (1, 2, 3))


def _mix(word, context, models, lambdas) -> float:
    return sum(lam * lm.prob(word, context) for lam, lm in zip(lambdas, models, strict=True))


@exercise("01", 3, "P(w | c) = λ1·P1 + λ2·P2 + λ3·P3")
def _(answer) -> str:
    _function(answer, "interpolated_prob", "(word, context, models, lambdas)")
    models = _tiny_models()
    cases = [("pan", ["yo", "quiero"], (0.2, 0.3, 0.5)), ("agua", ["tú", "quieres"], (0.1, 0.6, 0.3)),
             ("quiero", ["yo"], (0.3, 0.3, 0.4)), ("yo", [], (0.5, 0.25, 0.25)),
             ("con", ["quiero", "pan"], (1 / 3, 1 / 3, 1 / 3)), ("pan", ["ella", "quiere"], (1.0, 0.0, 0.0)),
             ("pan", ["ella", "quiere"], (0.0, 0.0, 1.0))]
    for word, context, lambdas in cases:
        shown = f"{word!r}, {context!r}, models, lambdas={lambdas}"
        got = _call(answer, "interpolated_prob", (word, list(context), models, lambdas), shown)
        if hasattr(got, "item"):
            got = got.item()
        if not _real(got):
            raise Wrong(f"interpolated_prob({shown}) returned {_kind(got)}: expected a probability, a float.")
        right = _mix(word, context, models, lambdas)
        if math.isclose(got, right, rel_tol=1e-6, abs_tol=1e-12):
            continue
        if math.isclose(got, _mix(word, context, models, lambdas[::-1]), rel_tol=1e-6):
            raise Wrong(f"interpolated_prob({shown}) = {got:.4f} pairs λ1 with the trigram: lambdas[i] goes with "
                        "models[i], so λ1 weighs the unigram P1(w) and λ3 the trigram P3(w | last two words).")
        if math.isclose(got, _mix(word, (), models, lambdas), rel_tol=1e-6):
            raise Wrong(f"interpolated_prob({shown}) = {got:.4f} ignores the context: pass it to the bigram and the "
                        "trigram, lm.prob(word, context) (each model keeps the last n - 1 words itself).")
        try:
            total = f"{sum(float(answer(w, list(context), models, lambdas)) for w in models[0].vocab):.3f}"
        except Exception:
            total = "something other than 1"
        raise Wrong(f"interpolated_prob({shown}) = {got:.4f}, expected {right:.4f} = "
                    + " + ".join(f"{lam:.3g}·{lm.prob(word, context):.3f}" for lam, lm in zip(lambdas, models, strict=True))
                    + f". Over the vocabulary your probabilities for this context sum to {total}: a mix of "
                    "probabilities with λs that sum to 1 must sum to 1 too.")
    return ("right: each model's probability, weighted by its λ. With λs that sum to 1 the mix is a probability "
            "distribution, and it is never 0 where the unigram knows the word: the trigram's precision where it has "
            "seen the context, the unigram's coverage where it has not. Now choose the λs on half of the held-out "
            "sentences and compare with the best add-k (solutions/01_solutions.ipynb has a run).")


# ---------------------------------------------------------------- 4: an unseen bigram under add-k
@functools.lru_cache(maxsize=1)
def _bigram_data():
    from nlp_course.ngram import NGramLanguageModel

    train, held = _toy_docs()
    train_sentences = [_word_tokenize(s) for s in _sentences(train)]

    def bigrams(sentences):
        return Counter(p for s in sentences for p in zip(["<s>", *s], [*s, "</s>"], strict=True))

    lm = NGramLanguageModel(n=2, k=1.0, min_count=MIN_WORD_COUNT).fit(train_sentences)
    return train_sentences, bigrams(train_sentences), bigrams([_word_tokenize(s) for s in _sentences(held)]), lm


@functools.cache
def _bigram_model(min_count: int):
    from nlp_course.ngram import NGramLanguageModel

    return NGramLanguageModel(n=2, k=1.0, min_count=min_count).fit(_bigram_data()[0])


def _add_k(lm, word, previous, k) -> float:
    lm.k = k  # prob() reads k when called; the counts do not depend on it
    try:
        return lm.prob(word, [previous])
    finally:
        lm.k = 1.0


@exercise("01", 4, "a held-out bigram new to the model, and its add-k probabilities (toy profile)")
def _(answer) -> str:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"expected (bigram, probabilities), got {_kind(answer)}.")
    bigram, probabilities = answer
    if bigram is Ellipsis or probabilities is Ellipsis:
        raise Wrong("not answered yet: replace the ... of the bigram and of the probabilities.")
    if isinstance(bigram, str) or not isinstance(bigram, (tuple, list)) or len(bigram) != 2 \
            or not all(isinstance(w, str) for w in bigram):
        raise Wrong(f"give the bigram as a pair of words (previous, word), like ('me', 'gusta'), not {_kind(bigram)}.")
    previous, word = bigram
    if [previous, word] != [w.lower() for w in bigram]:
        raise Wrong(f"{bigram!r}: word_tokenize lower-cases the text, so the model's words are lower-case.")
    train_sentences, train_bigrams, held_bigrams, lm = _bigram_data()
    if train_bigrams[(previous, word)]:
        raise Wrong(f"'{previous} {word}' occurs {train_bigrams[(previous, word)]} times in the training sentences: "
                    "look for held-out bigrams missing from `bigram_counts` (section 4).")
    if held_bigrams[(previous, word)] < 2:
        where = "never occurs" if not held_bigrams[(previous, word)] else "occurs only once"
        raise Wrong(f"'{previous} {word}' {where} in the toy profile's held-out sentences: find one that occurs at "
                    "least twice there (count the bigrams of `heldout_tokenized`; several qualify).")
    unk = [w for w in (previous, word) if w not in lm.vocab]
    if unk:
        raise Wrong(f"{' and '.join(map(repr, unk))} occurs fewer than MIN_WORD_COUNT = {MIN_WORD_COUNT} times in "
                    "training, so the model reads it as <unk>, and it has seen bigrams with <unk>: to the model this "
                    "bigram is not new. Pick one whose two words are both in the model's vocabulary (lm.vocab).")
    if not isinstance(probabilities, dict):
        raise Wrong(f"expected the probabilities as a dict {{k: P(word | previous)}} for each k of SMOOTHING_KS, "
                    f"got {_kind(probabilities)}.")
    missing = [k for k in SMOOTHING_KS if k not in probabilities]
    if missing:
        raise Wrong(f"no probability for k = {missing}: give one for each k in SMOOTHING_KS = {list(SMOOTHING_KS)}.")
    for k in SMOOTHING_KS:
        got = probabilities[k]
        if hasattr(got, "item"):
            got = got.item()
        if not _real(got):
            raise Wrong(f"the probability for k = {k} should be a number, got {_kind(got)}.")
        right = _add_k(lm, word, previous, k)
        if math.isclose(got, right, rel_tol=1e-3):
            continue
        if got == 0:
            raise Wrong(f"P = 0 for k = {k}: that is the unsmoothed model. Fit NGramLanguageModel(n=2, k={k}, "
                        "min_count=MIN_WORD_COUNT) on train_sentences and ask lm.prob(word, [previous]).")
        if math.isclose(got, _add_k(lm, previous, word, k), rel_tol=1e-3):
            raise Wrong(f"for k = {k} you give P({previous} | {word}): the arguments go the other way, "
                        f"lm.prob({word!r}, [{previous!r}]).")
        if math.isclose(got, _add_k(_bigram_model(min_count=1), word, previous, k), rel_tol=1e-3):
            raise Wrong(f"for k = {k} your probability comes from a model with min_count=1: section 4's models use "
                        "min_count=MIN_WORD_COUNT, whose smaller vocabulary |V| changes the denominator.")
        raise Wrong(f"for k = {k} your {got:.3g} is not what the model of section 4 gives: "
                    f"NGramLanguageModel(n=2, k={k}, min_count=MIN_WORD_COUNT).fit(train_sentences).prob({word!r}, "
                    f"[{previous!r}]) = (count + k) / (count(previous) + k·|V|).")
    first, last = _add_k(lm, word, previous, SMOOTHING_KS[0]), _add_k(lm, word, previous, SMOOTHING_KS[-1])
    return (f"right: '{previous} {word}' occurs {held_bigrams[(previous, word)]} times in the held-out text and never "
            f"in training; its probability goes from {first:.2e} at k = 1 to {last:.2e} at k = 0.001: k / (count(previous) "
            "+ k·|V|). The smaller k, the closer the unseen bigram gets to 0 and the "
            "higher the held-out perplexity; the larger k, the more mass every unseen bigram takes from the seen ones.")


# ---------------------------------------------------------------- 5: attention with projections
def _attention_weights(x, w_q, w_k, scale=True, dim=-1):
    scores = (x @ w_q) @ (x @ w_k).T
    if scale:
        scores = scores / math.sqrt(w_q.shape[1])
    return scores.softmax(dim=dim)


@exercise("01", 5, "attention weights with projections W_Q and W_K")
def _(answer) -> str:
    import torch

    _function(answer, "projected_attention", "(x, w_q, w_k)")
    generator = torch.Generator().manual_seed(0)
    for tokens, d, d_k in ((7, 16, 16), (5, 16, 8), (1, 4, 4)):
        x = torch.randn(tokens, d, generator=generator)
        w_q, w_k = torch.randn(d, d_k, generator=generator) / math.sqrt(d), torch.randn(d, d_k, generator=generator) / math.sqrt(d)
        shown = f"x of shape {tuple(x.shape)}, w_q and w_k of shape {(d, d_k)}"
        got = _call(answer, "projected_attention", (x, w_q, w_k), shown)
        if isinstance(got, tuple):
            raise Wrong(f"projected_attention({shown}) returned a tuple: return only the weights, a ({tokens}, {tokens}) "
                        "tensor (the notebook's attention() returns (output, weights)).")
        try:
            got = torch.as_tensor(got, dtype=torch.float32)
        except Exception:
            raise Wrong(f"projected_attention({shown}) returned {_kind(got)}: expected a tensor of weights.") from None
        if tuple(got.shape) != (tokens, tokens):
            raise Wrong(f"projected_attention({shown}) returned shape {tuple(got.shape)}: expected ({tokens}, {tokens}), "
                        "one row of weights per query token, one column per key token.")
        right = _attention_weights(x, w_q, w_k)
        if torch.allclose(got, right, atol=1e-5):
            continue
        if torch.allclose(got, right.T, atol=1e-5) or torch.allclose(got, _attention_weights(x, w_q, w_k, dim=0), atol=1e-5):
            raise Wrong("your columns sum to 1, not your rows: take the softmax over the keys, dim=-1, so that row i "
                        "is how token i's query spreads over every key.")
        if not torch.allclose(got.sum(-1), torch.ones(tokens), atol=1e-4):
            raise Wrong(f"your rows sum to {got.sum(-1)[0].item():.3f}, not 1: attention weights are a softmax over the "
                        "keys of the scaled scores.")
        if torch.allclose(got, _attention_weights(x, w_q, w_k, scale=False), atol=1e-5):
            raise Wrong("divide the scores by sqrt(d_k) before the softmax, as scaled dot-product attention does.")
        if d != d_k and torch.allclose(got, ((x @ w_q) @ (x @ w_k).T / math.sqrt(d)).softmax(-1), atol=1e-5):
            raise Wrong(f"with w_q of shape {(d, d_k)} the scale is sqrt(d_k) = sqrt({d_k}), the size of a query "
                        f"(w_q.shape[1]), not sqrt({d}), the size of x.")
        plain = x @ x.T
        if any(torch.allclose(got, (plain / math.sqrt(n)).softmax(-1), atol=1e-5) for n in (1, d, d_k)):
            raise Wrong("your weights do not use w_q and w_k: the queries are x @ w_q and the keys x @ w_k.")
        if torch.allclose(got, _attention_weights(x, w_k, w_q), atol=1e-5):
            raise Wrong("you swapped the roles of w_q and w_k: queries are x @ w_q (rows), keys x @ w_k (columns).")
        raise Wrong(f"projected_attention({shown}) differs from softmax((x @ w_q) @ (x @ w_k).T / sqrt(d_k)) by up to "
                    f"{(got - right).abs().max().item():.3g}.")
    return ("right: softmax((x W_Q)(x W_K)ᵀ / √d_k), row by row. Without projections the score of a token with itself "
            "is |x_i|², the largest there is, hence the bright diagonal; with W_Q ≠ W_K, q_i · k_i = x_i W_Q W_Kᵀ x_iᵀ "
            "is no longer special, and a token may attend most to another one, which is what a trained head learns.")


# ---------------------------------------------------------------- 6: truncation="only_second"
PAIR = ("El hombre fue a la tienda.", "Compró un litro de leche.")


@exercise("01", 6, 'the tokens that truncation="only_second", max_length=12 drops')
def _(answer) -> str:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"expected (tokenizer, dropped), got {_kind(answer)}.")
    tokenizer, dropped = answer
    if dropped is Ellipsis:
        raise Wrong("not answered yet: replace the ... with the list of tokens that truncation drops.")
    if not callable(tokenizer) or not hasattr(tokenizer, "convert_ids_to_tokens"):
        raise Wrong(f"the first item should be section 6's `tokenizer`, got {_kind(tokenizer)}.")
    if isinstance(dropped, str) or not isinstance(dropped, (list, tuple)) or not all(isinstance(t, str) for t in dropped):
        raise Wrong(f"give the dropped tokens as a list of strings, like ['litro', ...], got {_kind(dropped)}.")
    try:
        full = tokenizer(*PAIR)
    except Exception as err:
        raise Wrong(f"your tokenizer could not encode the pair: {type(err).__name__}: {err}") from None
    if 1 not in full.get("token_type_ids", []):
        raise Wrong("this tokenizer does not mark the second sentence with 1s in token_type_ids: use section 6's "
                    "BERT-style `tokenizer`.")
    try:
        cut = tokenizer(*PAIR, truncation="only_second", max_length=12)
    except Exception as err:
        raise Wrong(f"your tokenizer cannot truncate the pair to 12 tokens ({err}): with it the first sentence alone "
                    "leaves too little room. Use section 6's `tokenizer`.") from None
    tokens = tokenizer.convert_ids_to_tokens(full["input_ids"])
    second = [t for t, s in zip(tokens, full["token_type_ids"], strict=True) if s == 1][:-1]  # B without its [SEP]
    kept = sum(cut["token_type_ids"]) - 1
    right = second[kept:]
    dropped = list(dropped)
    if dropped == right:
        return (f"right: {len(right)} tokens of the second sentence go, {right}, taken from its end; the first sentence "
                f"and both [SEP] stay, so the pair is exactly 12 tokens. token_type_ids shrinks with it: "
                f"{cut['token_type_ids']}, still 0 for [CLS], A and the first [SEP], 1 for what is left of B and its [SEP].")
    if tokenizer.sep_token in dropped:
        raise Wrong(f"{tokenizer.sep_token} is not dropped: truncation removes text tokens, then the post-processor adds "
                    "[CLS] and both [SEP] to what is left.")
    first = [t for t, s in zip(tokens, full["token_type_ids"], strict=True) if s == 0][1:-1]
    if any(t in first and t not in second for t in dropped):
        raise Wrong("only_second never touches the first sentence: the tokens go from the end of the second one.")
    if dropped == right[1:] or dropped == second[kept - 1:]:
        raise Wrong(f"one token off: you give {len(dropped)} tokens, the encoding keeps {kept} of the {len(second)} "
                    "tokens of the second sentence. Compare tokenizer(A, B) with the truncated encoding.")
    raise Wrong(f"{dropped} is not what this tokenizer drops: compare convert_ids_to_tokens of tokenizer(A, B) with that "
                "of tokenizer(A, B, truncation='only_second', max_length=12) for section 6's pair "
                f"{PAIR[0]!r} / {PAIR[1]!r}, and list the tokens of B that are missing, in order.")
