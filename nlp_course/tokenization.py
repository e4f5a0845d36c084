"""Training and measuring tokenizers, and the course's own tokenizers for each profile.

- ``train_tokenizer(texts, kind, vocab_size)``: byte-level BPE (RoBERTa or GPT-2 family), WordPiece
  (BERT / ELECTRA) or Unigram (T5), trained with the Rust `tokenizers` library on any iterable of
  strings, streamed, and returned as a ``transformers.PreTrainedTokenizerFast`` ready for
  ``save_pretrained``.
- ``fertility``, ``continued_word_ratio``, ``unknown_rate``, ``chars_per_token``: the measures of
  source document 004 (tokens per word, share of words split in two or more, share of unknown tokens).
- ``tokenizer_fit``: those measures on a sample of someone's texts, and a warning when the tokenizer
  clearly was not made for them (English text on the Spanish course tokenizer, say).
- ``course_tokenizer("es" | "code", profile)``: the Spanish-prose and Python-code tokenizers of the
  course, loaded from ``outputs/tokenizers/<profile>/`` if an earlier notebook saved them, trained
  (and saved) if not.

Taught in: 03_tokenizers, where the BPE pipeline is first assembled by hand from `tokenizers` parts
and compared with ``train_tokenizer``.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from nlp_course.code_corpus import load_code_corpus
from nlp_course.data import load_corpus
from nlp_course.errors import TokenizerTrainingError
from nlp_course.files import atomic_folder, outputs_dir
from nlp_course.profiles import get_profile

KINDS = ("bpe", "wordpiece", "unigram")
BYTE_ALPHABET = 256


@dataclass(frozen=True)
class Family:
    """The special tokens a model family expects, by role."""

    name: str
    special_tokens: dict[str, str]  # role ("bos_token", "pad_token", ...) -> token, in vocabulary order


FAMILIES = {
    # RoBERTa / BERTIN: <s> text </s>, the slide's list and order
    "roberta": Family("roberta", {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask>"}),
    # GPT-2 / CodeParrot: one token ends every text and doubles as padding
    "gpt2": Family("gpt2", {"eos_token": "<|endoftext|>"}),
    # BERT / ELECTRA: [CLS] text [SEP]
    "bert": Family("bert", {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}),
    # T5 (SentencePiece Unigram): text </s>
    "t5": Family("t5", {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}),
}
DEFAULT_FAMILY = {"bpe": "roberta", "wordpiece": "bert", "unigram": "t5"}
ALLOWED_FAMILIES = {"bpe": ("roberta", "gpt2"), "wordpiece": ("bert",), "unigram": ("t5",)}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def build_pipeline(kind: str, vocab_size: int, family: str, min_frequency: int = 2, lowercase: bool = False):
    """The untrained `tokenizers` pipeline and its trainer for a kind of tokenizer."""
    specials = list(FAMILIES[family].special_tokens.values())
    if kind == "bpe":  # byte level: no normalizer, every string encodable, lossless decoding
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=False)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials, show_progress=False
        )
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()  # a space becomes "▁", glued to the next word
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
        )
    else:
        raise TokenizerTrainingError(f"Unknown kind {kind!r}; choose one of {KINDS}.")
    return tokenizer, trainer


def _post_processor(family: str, tokenizer: Tokenizer):
    tid = tokenizer.token_to_id
    if family == "roberta":
        return processors.RobertaProcessing(("</s>", tid("</s>")), ("<s>", tid("<s>")), add_prefix_space=False)
    if family == "bert":
        return processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", tid("[CLS]")), ("[SEP]", tid("[SEP]"))],
        )
    if family == "t5":
        return processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tid("</s>"))])
    return None  # gpt2: nothing added; the training data joins texts with <|endoftext|> itself


class _Stream:
    """Batches an iterable of strings for `tokenizers`, checking types and counting as it goes."""

    def __init__(self, texts: Iterable[str], batch_size: int):
        self.texts, self.batch_size = texts, batch_size
        self.n_texts = self.n_chars = 0

    def __iter__(self) -> Iterator[list[str]]:
        batch: list[str] = []
        for text in self.texts:
            if not isinstance(text, str):
                raise TokenizerTrainingError(
                    f"texts must yield strings, got {type(text).__name__} "
                    "(for a datasets.Dataset pass dataset['text'] or a generator of its text column)."
                )
            self.n_texts += 1
            if not self.n_chars and text.strip():  # count only text with something in it
                self.n_chars = 1
            batch.append(text)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def train_tokenizer(
    texts: Iterable[str],
    kind: str = "bpe",
    vocab_size: int = 8_000,
    *,
    family: str | None = None,
    min_frequency: int = 2,
    lowercase: bool = False,
    model_max_length: int | None = None,
    batch_size: int = 1_000,
) -> PreTrainedTokenizerFast:
    """Train a tokenizer on ``texts`` and wrap it for `transformers`.

    ``kind``: ``"bpe"`` (byte-level BPE; ``family="roberta"`` gives ``<s> ... </s>``,
    ``family="gpt2"`` a single ``<|endoftext|>``), ``"wordpiece"`` (BERT's ``[CLS] ... [SEP]``) or
    ``"unigram"`` (T5's ``... </s>``). ``texts`` is any iterable of strings and is read once, in
    batches, never held in memory whole. The vocabulary must hold at least the alphabet plus the
    special tokens (257+ for byte-level BPE): a smaller one is an error, not a silently larger result.
    """
    if isinstance(texts, (str, bytes)):
        raise TokenizerTrainingError("texts must be an iterable of strings (e.g. a list), not a single string.")
    if not isinstance(texts, Iterable):
        raise TokenizerTrainingError(f"texts must be an iterable of strings (e.g. a list), not {type(texts).__name__}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise TokenizerTrainingError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if model_max_length is not None and (not isinstance(model_max_length, int) or model_max_length < 1):
        raise TokenizerTrainingError(f"model_max_length must be a positive integer or None, got {model_max_length!r}.")
    if kind not in KINDS:
        raise TokenizerTrainingError(f"Unknown kind {kind!r}; choose one of {KINDS}.")
    family = family or DEFAULT_FAMILY[kind]
    if family not in ALLOWED_FAMILIES[kind]:
        raise TokenizerTrainingError(f"A {kind} tokenizer comes in the families {ALLOWED_FAMILIES[kind]}, not {family!r}.")
    n_special = len(FAMILIES[family].special_tokens)
    if not isinstance(vocab_size, int) or vocab_size <= n_special:
        raise TokenizerTrainingError(f"vocab_size must be an integer larger than the {n_special} special tokens, got {vocab_size!r}.")
    if kind == "bpe" and vocab_size < BYTE_ALPHABET + n_special:
        raise TokenizerTrainingError(
            f"vocab_size={vocab_size} is smaller than the byte alphabet plus special tokens "
            f"({BYTE_ALPHABET} + {n_special} = {BYTE_ALPHABET + n_special}); use at least that."
        )

    tokenizer, trainer = build_pipeline(kind, vocab_size, family, min_frequency, lowercase)
    stream = _Stream(texts, batch_size)
    try:
        tokenizer.train_from_iterator(stream, trainer=trainer)
    except Exception as err:  # tokenizers re-raises errors from the iterator, and its own, as Exception
        if isinstance(err, TokenizerTrainingError) or isinstance(err.__cause__, TokenizerTrainingError):
            raise
        if "not large enough to contain all chars" in str(err):
            raise TokenizerTrainingError(
                f"vocab_size={vocab_size} is smaller than the corpus' alphabet plus {n_special} special tokens; "
                "raise vocab_size (a few hundred suffices for most European-language text)."
            ) from err
        raise
    if stream.n_chars == 0:
        raise TokenizerTrainingError(f"No text to train on: texts yielded {stream.n_texts} strings, all empty or blank.")
    if tokenizer.get_vocab_size() > vocab_size:
        raise TokenizerTrainingError(
            f"vocab_size={vocab_size} is smaller than this corpus' alphabet plus special tokens "
            f"({tokenizer.get_vocab_size()}); use vocab_size >= {tokenizer.get_vocab_size()}."
        )
    tokenizer.post_processor = _post_processor(family, tokenizer)
    if family == "roberta":  # as in RoBERTa and BERTIN, "<mask>" takes the space before it along
        tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)])
    specials = dict(FAMILIES[family].special_tokens)
    if family == "gpt2":  # GPT-2 has no padding token; padding with <|endoftext|> is the usual choice
        specials.update(bos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    extra = {"model_max_length": model_max_length} if model_max_length else {}
    if family == "bert":
        extra["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials, **extra)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------
def word_token_counts(tokenizer, texts: Iterable[str]) -> tuple[list[int], int, int]:
    """For every whitespace-separated word, the number of tokens whose character span overlaps it.

    Each text is encoded once, whole, with offsets and without special tokens. Returns the list of
    per-word counts, the number of tokens, and the number of unknown tokens. Tokens that cover only
    whitespace (byte-level ``Ġ`` runs, indentation) belong to no word; a SentencePiece ``▁`` glued to
    a word belongs to it.
    """
    counts: list[int] = []
    n_tokens = n_unknown = 0
    unk_id = tokenizer.unk_token_id
    if unk_id is None:  # a wrapper built without unk_token=: ask the model itself
        model_unk = getattr(tokenizer.backend_tokenizer.model, "unk_token", None)
        unk_id = tokenizer.convert_tokens_to_ids(model_unk) if model_unk else None
    for text in texts:
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets, ids = encoding["offset_mapping"], encoding["input_ids"]
        n_tokens += len(ids)
        if unk_id is not None and unk_id != tokenizer.eos_token_id:  # GPT-2's <|endoftext|> is no unknown
            n_unknown += sum(1 for i in ids if i == unk_id)
        position, t = 0, 0
        for word in text.split():
            start = text.index(word, position)
            end = position = start + len(word)
            while t < len(offsets) and offsets[t][1] <= start:  # tokens wholly before this word
                t += 1
            count, j = 0, t
            while j < len(offsets) and offsets[j][0] < end:
                if offsets[j][1] > start:  # overlaps [start, end)
                    count += 1
                j += 1
            counts.append(count)
    return counts, n_tokens, n_unknown


def _checked(counts: list[int], what: str) -> list[int]:
    if not counts:
        raise ValueError(f"{what} needs at least one word in texts.")
    return counts


def fertility(tokenizer, texts: Iterable[str]) -> float:
    """Tokens assigned to words / number of words (1.0: every word is a single token)."""
    counts = _checked(word_token_counts(tokenizer, texts)[0], "fertility()")
    return sum(counts) / len(counts)


def continued_word_ratio(tokenizer, texts: Iterable[str]) -> float:
    """Share of words split into two or more tokens."""
    counts = _checked(word_token_counts(tokenizer, texts)[0], "continued_word_ratio()")
    return sum(1 for c in counts if c >= 2) / len(counts)


def unknown_rate(tokenizer, texts: Iterable[str]) -> float:
    """Share of tokens that are the unknown token (always 0 for byte-level BPE)."""
    _, n_tokens, n_unknown = word_token_counts(tokenizer, texts)
    if n_tokens == 0:
        raise ValueError("unknown_rate() needs texts that produce at least one token.")
    return n_unknown / n_tokens


def chars_per_token(tokenizer, texts: Iterable[str]) -> float:
    """Characters of text per token: how much text fits in a fixed context window."""
    texts = list(texts)
    n_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    if n_tokens == 0:
        raise ValueError("chars_per_token() needs texts that produce at least one token.")
    return sum(map(len, texts)) / n_tokens


def tokenizer_report(tokenizer, texts: Iterable[str]) -> dict[str, float]:
    """All four measures from one pass of encoding: a row for a comparison table."""
    texts = list(texts)
    counts, n_tokens, n_unknown = word_token_counts(tokenizer, texts)
    _checked(counts, "tokenizer_report()")
    return {
        "vocab_size": len(tokenizer),
        "fertility": sum(counts) / len(counts),
        "continued_words": sum(1 for c in counts if c >= 2) / len(counts),
        "unknown_rate": n_unknown / n_tokens if n_tokens else 0.0,
        "chars_per_token": sum(map(len, texts)) / n_tokens if n_tokens else float("nan"),
    }


# Measured on the training splits of the course's labelled sets (200 texts each): the Spanish toy tokenizer
# gives 1.8 to 1.9 tokens per word on Spanish text and 3.2 to 3.4 on English; a tokenizer trained on the
# texts themselves gives 1.6 to 1.8. Above these limits a tokenizer cuts most words into pieces.
MAX_FERTILITY = 2.5
MAX_UNKNOWN_RATE = 0.01


def tokenizer_fit(tokenizer, texts, sample: int = 200) -> tuple[dict, str | None]:
    """``tokenizer_report`` on the first ``sample`` non-blank texts, and a warning if the fit is clearly poor."""
    chosen = [t for t in texts if isinstance(t, str) and t.split()][:sample]
    if not chosen:
        raise ValueError("tokenizer_fit() needs at least one text with a word in it.")
    report = tokenizer_report(tokenizer, chosen)
    if report["fertility"] <= MAX_FERTILITY and report["unknown_rate"] <= MAX_UNKNOWN_RATE:
        return report, None
    return report, (
        f"The tokenizer does not fit these texts: {report['fertility']:.2f} tokens per word (over {MAX_FERTILITY}), "
        f"{report['continued_words']:.0%} of words cut into pieces, {report['unknown_rate']:.1%} unknown tokens, on "
        f"{len(chosen)} of them. It was probably made for another language or domain; the model will see fragments "
        "instead of words. Use a model (and tokenizer) made for this text, or, in the toy profile, "
        "--tokenizer train to train a tokenizer on the training split and pretrain the encoder with it."
    )


# --------------------------------------------------------------------------------------------
# The course's tokenizers
# --------------------------------------------------------------------------------------------
def course_tokenizer_spec(name: str, profile, max_documents: int | None = None) -> dict:
    """What the course tokenizer ``name`` is for a profile: kind, family, vocabulary and corpus.

    ``max_documents`` (default: the profile's ``tokenizer_documents``) is part of it: a tokenizer
    trained on a sample is not the one trained on the full corpus.
    """
    limit = max_documents if max_documents is not None else profile.tokenizer_documents
    if name == "es":
        return {"name": name, "kind": "bpe", "family": "roberta", "vocab_size": profile.vocab_size,
                "corpus": profile.corpus_es, "config": profile.corpus_es_config, "max_documents": limit,
                "profile": profile.name}
    if name == "code":
        return {"name": name, "kind": "bpe", "family": "gpt2", "vocab_size": profile.code_vocab_size,
                "corpus": profile.code_corpus, "split": "train", "max_documents": limit, "profile": profile.name}
    raise ValueError(f"Unknown course tokenizer {name!r}; choose 'es' (Spanish prose) or 'code' (Python).")


def course_tokenizer_texts(name: str, profile, max_documents: int | None = None) -> Iterator[str]:
    """The training texts of a course tokenizer, streamed."""
    spec = course_tokenizer_spec(name, profile, max_documents)
    limit = spec["max_documents"]
    if name == "es":
        corpus = load_corpus(spec["corpus"], config=spec["config"], streaming=profile.streaming, max_documents=limit)
        return (row["text"] for row in corpus)
    code = load_code_corpus(spec["corpus"], split="train", max_files=limit)
    return (row["content"] for row in code)


def save_tokenizer(tokenizer, path: Path, spec: dict | None = None) -> Path:
    """``save_pretrained`` into a temporary folder, then moved into place: never half-written."""
    with atomic_folder(Path(path)) as tmp:
        tokenizer.save_pretrained(tmp)
        if spec is not None:
            (tmp / "course_tokenizer.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return Path(path)


def course_tokenizer(name: str, profile=None, *, retrain: bool = False, verbose: bool = True):
    """The course's Spanish (``"es"``) or Python-code (``"code"``) tokenizer for a profile.

    Loaded from ``outputs/tokenizers/<profile>/<name>`` when notebook 03 (or an earlier call) saved
    one with the same specification; otherwise trained on the profile's corpus and saved there.
    """
    profile = profile if profile is not None and not isinstance(profile, str) else get_profile(profile)
    spec = course_tokenizer_spec(name, profile)
    path = outputs_dir() / "tokenizers" / profile.name / name
    meta = path / "course_tokenizer.json"
    if not retrain and meta.is_file():
        try:
            saved = json.loads(meta.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            saved = None
        if saved == spec:
            if verbose:
                print(f"Loaded the course tokenizer {name!r} from {path}")
            return AutoTokenizer.from_pretrained(path)
        if verbose:
            print(f"The tokenizer saved in {path} was made for other settings; training a new one.")
    if verbose:
        print(f"Training the course tokenizer {name!r} ({spec['kind']}, vocabulary {spec['vocab_size']:,}) on {spec['corpus']}...")
    tokenizer = train_tokenizer(
        course_tokenizer_texts(name, profile), spec["kind"], spec["vocab_size"], family=spec["family"]
    )
    save_tokenizer(tokenizer, path, spec)
    if verbose:
        print(f"Saved to {path}")
    return tokenizer


def missing_keywords(tokenizer) -> list[str]:
    """Python keywords with no single-token entry, bare or after a space (``Ġdef``).

    In code a keyword nearly always follows a space or an indentation, so byte-level BPE learns it
    with the space marker ``Ġ``; either form counts.
    """
    vocab = tokenizer.get_vocab()
    return [k for k in keyword.kwlist if k not in vocab and "Ġ" + k not in vocab]
