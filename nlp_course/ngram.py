"""A count-based n-gram language model with add-k smoothing.

P(w | context) = (count(context w) + k) / (count(context) + k * |V|). With k = 0 it is the
maximum-likelihood estimate, P("like" | "I") = count("I like") / count("I"), and a single unseen
n-gram makes the perplexity of a text infinite; k > 0 moves a little probability to every unseen
continuation. Later chapters use it to score documents (BERTIN's perplexity sampling).

Taught in: 01_nlp_concepts, section 4, where the bigram case is written out by hand first.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_WORD_RE = re.compile(r"\w+|[^\w\s]")


def word_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words and single punctuation marks (``¿``, ``¡``, ``,`` ...) as separate tokens."""
    return _WORD_RE.findall(text.lower() if lowercase else text)


class NGramLanguageModel:
    """An n-gram model over lists of tokens (one list per sentence).

    Words seen fewer than ``min_count`` times in training become ``<unk>``, so a test text's unseen
    words have a probability too.
    """

    def __init__(self, n: int = 2, k: float = 0.0, min_count: int = 1):
        if n < 1:
            raise ValueError(f"n must be at least 1 (1 = unigrams, 2 = bigrams ...), got {n}.")
        if k < 0:
            raise ValueError(f"k (add-k smoothing) must be >= 0, got {k}.")
        self.n, self.k, self.min_count = n, k, min_count
        self.vocab: set[str] = set()
        self.ngram_counts: Counter[tuple[str, ...]] = Counter()
        self.context_counts: Counter[tuple[str, ...]] = Counter()
        self._continuations: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)

    def _pad(self, sentence: Sequence[str]) -> list[str]:
        words = [w if w in self.vocab else UNK for w in sentence]
        return [BOS] * (self.n - 1) + words + [EOS]

    def fit(self, sentences: Iterable[Sequence[str]]) -> NGramLanguageModel:
        """Count the n-grams of ``sentences`` (lists of tokens), replacing any earlier counts."""
        sentences = [list(s) for s in sentences]
        self.ngram_counts, self.context_counts = Counter(), Counter()
        self._continuations = defaultdict(Counter)
        counts = Counter(w for s in sentences for w in s)
        self.vocab = {w for w, c in counts.items() if c >= self.min_count} | {EOS, UNK}
        for sentence in sentences:
            padded = self._pad(sentence)
            for i in range(self.n - 1, len(padded)):
                context, word = tuple(padded[i - self.n + 1 : i]), padded[i]
                self.ngram_counts[context + (word,)] += 1
                self.context_counts[context] += 1
                self._continuations[context][word] += 1
        return self

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """P(word | the last n-1 tokens of context); words outside the vocabulary count as <unk>."""
        context = tuple(context)[-(self.n - 1) :] if self.n > 1 else ()
        context = tuple(w if w in self.vocab or w == BOS else UNK for w in context)
        context = (BOS,) * (self.n - 1 - len(context)) + context
        word = word if word in self.vocab else UNK
        numerator = self.ngram_counts[context + (word,)] + self.k
        denominator = self.context_counts[context] + self.k * len(self.vocab)
        return numerator / denominator if denominator else 0.0

    def log_prob(self, sentence: Sequence[str]) -> tuple[float, int]:
        """Total natural-log probability of a sentence (with its </s>) and the number of predictions."""
        padded = self._pad(sentence)
        total = 0.0
        for i in range(self.n - 1, len(padded)):
            p = self.prob(padded[i], padded[i - self.n + 1 : i])
            if p == 0.0:
                return -math.inf, len(padded) - self.n + 1
            total += math.log(p)
        return total, len(padded) - self.n + 1

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp(-mean log P) over every predicted token, </s> included; ``inf`` if any has P = 0."""
        total, count = 0.0, 0
        for sentence in sentences:
            lp, m = self.log_prob(sentence)
            if lp == -math.inf:
                return math.inf
            total, count = total + lp, count + m
        if count == 0:
            raise ValueError("perplexity() needs at least one sentence.")
        return math.exp(-total / count)

    def generate(self, max_words: int = 20, seed: int | None = None, prefix: Sequence[str] = ()) -> list[str]:
        """Sample up to ``max_words`` new words from the counts (unsmoothed), after ``prefix``.

        Stops early at </s>. Prefix words outside the vocabulary are looked up as <unk>.
        """
        rng = random.Random(seed)
        history = [w if w in self.vocab else UNK for w in prefix]
        out: list[str] = []
        while len(out) < max_words:
            context = tuple(([BOS] * (self.n - 1) + history)[-(self.n - 1) :]) if self.n > 1 else ()
            options = self._continuations.get(context)
            if not options:
                break
            words, weights = zip(*options.items(), strict=True)
            word = rng.choices(words, weights=weights)[0]
            if word == EOS:
                break
            out.append(word)
            history.append(word)
        return list(prefix) + out
