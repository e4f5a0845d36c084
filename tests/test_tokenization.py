import json
import keyword

import pytest
from helpers import notebook_function
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from nlp_course import tokenization
from nlp_course.code_corpus import iter_python_files
from nlp_course.data import load_corpus
from nlp_course.profiles import PROFILES
from nlp_course.tokenization import (
    TokenizerTrainingError,
    continued_word_ratio,
    fertility,
    missing_keywords,
    train_tokenizer,
    unknown_rate,
)


@pytest.fixture(scope="module")
def spanish():
    return load_corpus("corpus_es")["text"]


@pytest.fixture(scope="module")
def code_files():
    return [text for _, text in iter_python_files()]


# ---------------------------------------------------------------- metrics, counted by hand
@pytest.fixture(scope="module")
def handmade_wordpiece():
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "hola", "mundo", "##s", "¿", "que", "tal", "?"])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")


HAND_TEXTS = ["hola mundo holas", "¿que tal? xyz"]
# words:  hola(1) mundo(1) holas(hola ##s: 2) | ¿que(¿ que: 2) tal?(tal ?: 2) xyz([UNK]: 1)
# 9 tokens for 6 words; 3 words of two tokens; 1 unknown token of 9


def test_tokens_per_word_by_hand(handmade_wordpiece):
    counts, n_tokens, n_unknown = tokenization.word_token_counts(handmade_wordpiece, HAND_TEXTS)
    assert counts == [1, 1, 2, 2, 2, 1] and n_tokens == 9 and n_unknown == 1


def test_metrics_by_hand(handmade_wordpiece):
    assert fertility(handmade_wordpiece, HAND_TEXTS) == pytest.approx(9 / 6)
    assert continued_word_ratio(handmade_wordpiece, HAND_TEXTS) == pytest.approx(3 / 6)
    assert unknown_rate(handmade_wordpiece, HAND_TEXTS) == pytest.approx(1 / 9)
    report = tokenization.tokenizer_report(handmade_wordpiece, HAND_TEXTS)
    assert report["chars_per_token"] == pytest.approx(sum(map(len, HAND_TEXTS)) / 9)


def test_whitespace_tokens_belong_to_no_word():
    # byte-level BPE: "x  =  1" -> x, Ġ, Ġ=, Ġ, Ġ1 (5 tokens) but only 3 words, one token each
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    vocab.update({"Ġ=": len(vocab), "Ġ1": len(vocab) + 1})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("Ġ", "="), ("Ġ", "1")]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok)
    assert hf.tokenize("x  =  1") == ["x", "Ġ", "Ġ=", "Ġ", "Ġ1"]
    assert tokenization.word_token_counts(hf, ["x  =  1"])[0] == [1, 1, 1]
    assert fertility(hf, ["x  =  1"]) == 1.0 and unknown_rate(hf, ["x  =  1"]) == 0.0


def test_repeated_words_and_surrounding_whitespace_by_hand(handmade_wordpiece):
    # "hola" three times, "holas" once, with leading, doubled and trailing spaces
    counts, n_tokens, _ = tokenization.word_token_counts(handmade_wordpiece, ["  hola hola  holas hola "])
    assert counts == [1, 1, 2, 1] and n_tokens == 5


def test_unigram_metaspace_pieces_count_for_their_word():
    vocab = [("<unk>", 0.0), ("▁", -2.0), ("▁ho", -1.0), ("la", -1.0), ("▁hola", -0.5), ("s", -1.5)]
    vocab += [(c, -5.0) for c in "holas"]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    assert hf.tokenize("hola holas") == ["▁hola", "▁hola", "s"]
    assert tokenization.word_token_counts(hf, ["hola holas"])[0] == [1, 2]


def test_unknown_token_found_without_unk_token_argument():
    vocab = {t: i for i, t in enumerate(["[UNK]", "hola"])}
    wp = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bare = PreTrainedTokenizerFast(tokenizer_object=wp)  # no unk_token= given
    assert unknown_rate(bare, ["hola xyz"]) == 0.5


def test_metrics_need_words(handmade_wordpiece):
    with pytest.raises(ValueError, match="at least one word"):
        fertility(handmade_wordpiece, ["   ", ""])


# ---------------------------------------------------------------- training: each kind and family
@pytest.mark.parametrize(
    "kind, family, first, last",
    [("bpe", "roberta", "<s>", "</s>"), ("wordpiece", "bert", "[CLS]", "[SEP]"), ("unigram", "t5", None, "</s>")],
)
def test_each_kind_has_its_family_special_tokens(spanish, kind, family, first, last):
    tok = train_tokenizer(spanish, kind, 1_000)
    assert isinstance(tok, PreTrainedTokenizerFast) and len(tok) == 1_000
    tokens = tok.convert_ids_to_tokens(tok("El agua del río.")["input_ids"])
    assert tokens[-1] == last and (first is None or tokens[0] == first)
    for token in tokenization.FAMILIES[family].special_tokens.values():
        assert token in tok.all_special_tokens and token in tok.get_vocab()
    assert tok.decode(tok("El agua del río.")["input_ids"], skip_special_tokens=True).replace(" .", ".") == "El agua del río."


def test_wordpiece_gives_segment_ids_for_pairs(spanish):
    tok = train_tokenizer(spanish, "wordpiece", 1_000)
    first, second = "El hombre fue a la tienda.", "Compró leche."
    a, b = tok.tokenize(first), tok.tokenize(second)
    pair = tok(first, second)
    assert tok.convert_ids_to_tokens(pair["input_ids"]) == ["[CLS]", *a, "[SEP]", *b, "[SEP]"]
    # segment 0: [CLS], the first sentence and its [SEP]; segment 1: the second sentence and the final [SEP]
    assert pair["token_type_ids"] == [0] * (1 + len(a) + 1) + [1] * (len(b) + 1)
    assert len(a) > 1 and len(b) > 1


def test_byte_level_bpe_encodes_anything_without_unknowns(spanish):
    tok = train_tokenizer(spanish, "bpe", 500)
    text = "Ωμέγα 🤗 ∑ ñandú\t\u200b日本"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert unknown_rate(tok, [text]) == 0.0


def test_gpt2_family_pads_with_end_of_text(spanish):
    tok = train_tokenizer(spanish, "bpe", 500, family="gpt2")
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert tok("hola")["input_ids"] == tok("hola", add_special_tokens=False)["input_ids"]  # nothing added


def test_texts_are_read_once_and_lazily(spanish):
    class Once:
        iterations = 0

        def __iter__(self):
            Once.iterations += 1
            return iter(spanish)

    tok = train_tokenizer(Once(), "bpe", 600)
    assert Once.iterations == 1 and len(tok) == 600
    pulled = []

    def generate():
        for i in range(10_000):
            pulled.append(i)
            yield f"texto {i}"

    stream = iter(tokenization._Stream(generate(), batch_size=100))
    first = next(stream)
    assert len(first) == 100 and len(pulled) == 100  # one batch at a time, never the whole input


def test_roberta_mask_takes_the_space_before_it(spanish):
    tok = train_tokenizer(spanish, "bpe", 600)
    tokens = tok.tokenize("La casa <mask> grande.")
    assert " <mask>" in tokens and "Ġ" not in tokens  # no lone space token before the mask
    assert tok("casa <mask>")["input_ids"].count(tok.mask_token_id) == 1 and len(tok) == 600


def test_saved_and_reloaded_as_auto_tokenizer(spanish, tmp_path):
    tok = train_tokenizer(spanish, "bpe", 600)
    tokenization.save_tokenizer(tok, tmp_path / "es")
    again = AutoTokenizer.from_pretrained(tmp_path / "es")
    text = "¿Dónde está la biblioteca?"
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert not list(tmp_path.glob(".es-*")), "no temporary folder left behind"


# ---------------------------------------------------------------- bad input, before long work
def test_byte_level_vocabulary_below_alphabet_is_refused_before_reading():
    def never():
        pytest.fail("texts must not be read")
        yield ""

    with pytest.raises(TokenizerTrainingError, match=r"256 \+ 5 = 261"):
        train_tokenizer(never(), "bpe", 260)


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_vocabulary_below_corpus_alphabet_is_an_error(spanish, kind):
    with pytest.raises(TokenizerTrainingError, match="alphabet"):
        train_tokenizer(spanish, kind, 40)


@pytest.mark.parametrize("kind", ["bpe", "wordpiece", "unigram"])
@pytest.mark.parametrize("texts", [[], ["", ""], iter([]), ["   ", "\n\t "]])
def test_empty_or_blank_input(texts, kind):
    with pytest.raises(TokenizerTrainingError, match="No text"):
        train_tokenizer(texts, kind, 300)


def test_bad_arguments(spanish):
    with pytest.raises(TokenizerTrainingError, match="not a single string"):
        train_tokenizer("un texto", "bpe", 300)
    with pytest.raises(TokenizerTrainingError, match="must yield strings"):
        train_tokenizer([{"text": "hola"}], "bpe", 300)
    with pytest.raises(TokenizerTrainingError, match="Unknown kind"):
        train_tokenizer(spanish, "sentencepiece", 300)
    with pytest.raises(TokenizerTrainingError, match="families"):
        train_tokenizer(spanish, "wordpiece", 300, family="gpt2")
    with pytest.raises(TokenizerTrainingError, match="larger than the 5 special"):
        train_tokenizer(spanish, "wordpiece", 5)


# ---------------------------------------------------------------- code: round trip and keywords
@pytest.fixture(scope="module")
def code_tokenizer(code_files):
    return train_tokenizer(code_files[::2], "bpe", 4_000, family="gpt2")  # half the files


def test_round_trip_is_lossless_on_real_code(code_tokenizer, code_files):
    held_out = code_files[1::2]  # files the tokenizer never saw, indentation, tabs and unicode included
    encoded = code_tokenizer(held_out, add_special_tokens=False)["input_ids"]
    assert all(code_tokenizer.decode(ids) == text for ids, text in zip(encoded, held_out, strict=True))


def test_python_keywords_are_single_tokens(code_tokenizer):
    missing = missing_keywords(code_tokenizer)
    assert set(missing) <= {"nonlocal"}, missing  # the book's finding too: nonlocal is rare
    for word in ("def", "return", "self", "import"):
        assert len(code_tokenizer.tokenize(" " + word)) == 1


def test_missing_keywords_by_hand():
    vocab = {t: i for i, t in enumerate(["[UNK]", "def", "Ġreturn", "Ġdefault", "lambda_"])}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]")))
    missing = missing_keywords(tok)
    assert "def" not in missing and "return" not in missing  # bare, and after a space
    assert "lambda" in missing and "nonlocal" in missing
    assert sorted(missing) == sorted(set(keyword.kwlist) - {"def", "return"})


# ---------------------------------------------------------------- the course tokenizers
def test_course_tokenizer_is_trained_once_then_loaded(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NLP_COURSE_OUTPUTS", str(tmp_path))
    toy = PROFILES["toy"]
    first = tokenization.course_tokenizer("es", toy)
    assert "Training" in capsys.readouterr().out and len(first) == toy.vocab_size
    saved = tmp_path / "tokenizers" / "toy" / "es"
    assert json.loads((saved / "course_tokenizer.json").read_text())["vocab_size"] == toy.vocab_size
    second = tokenization.course_tokenizer("es", "toy")
    assert "Loaded" in capsys.readouterr().out
    assert second("¿Qué tal?")["input_ids"] == first("¿Qué tal?")["input_ids"]


def test_course_tokenizer_retrains_when_settings_change(monkeypatch, tmp_path, capsys):
    import dataclasses

    monkeypatch.setenv("NLP_COURSE_OUTPUTS", str(tmp_path))
    tokenization.course_tokenizer("es", PROFILES["toy"])
    smaller = dataclasses.replace(PROFILES["toy"], vocab_size=700)
    tok = tokenization.course_tokenizer("es", smaller)
    assert "other settings" in capsys.readouterr().out and len(tok) == 700


def test_course_tokenizer_unknown_name():
    with pytest.raises(ValueError, match="'es'.*'code'"):
        tokenization.course_tokenizer("fr", PROFILES["toy"])


# ---------------------------------------------------------------- the notebook's BPE, checked here too
def test_bpe_written_out_in_notebook_03_learns_the_merges_of_tokenizers(spanish):
    from collections import Counter

    from tokenizers import trainers

    learn_bpe = notebook_function("03_tokenizers.ipynb", "learn_bpe")
    words = Counter(w for doc in spanish[-10:] for w in doc.split())  # other text than the notebook uses
    alphabet = {ch for w in words for ch in w}
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    text = " ".join(w for w, c in words.items() for _ in range(c))
    tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=len(alphabet) + 150, min_frequency=0, show_progress=False))
    library = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    assert learn_bpe(words, 150) == library and len(library) == 150


def test_bytes_to_unicode_of_notebook_03_is_the_library_alphabet():
    bytes_to_unicode = notebook_function("03_tokenizers.ipynb", "bytes_to_unicode")
    table = bytes_to_unicode()
    assert len(table) == 256 and set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert (table[32], table[10], table[9], table[ord("a")]) == ("Ġ", "Ċ", "ĉ", "a")
