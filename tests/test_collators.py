"""Notebook 07's collator tour and scoring code, checked on the course's own tokenizer."""


import numpy as np
import pytest
import torch
from helpers import notebook_function
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    DataCollatorForLanguageModeling,
    DataCollatorForPermutationLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
)

from nlp_course.evaluation import compute_scores

NB07 = "07_fine_tuning_classification.ipynb"
SENTENCES = ["El tren llegó tarde.", "Compré pan en la panadería de Valparaíso."]


@pytest.mark.parametrize("num_labels", [2, 3])
def test_compute_scores_written_out_in_notebook_07_is_the_packages(num_labels):
    written_out = notebook_function(NB07, "compute_scores")
    rng = np.random.default_rng(num_labels)
    labels, predictions = rng.integers(0, num_labels, 50), rng.integers(0, num_labels, 50)
    assert written_out(labels, predictions, num_labels) == compute_scores(labels, predictions, num_labels)


def test_compute_scores_on_a_hand_count():
    # 6 examples, 4 right; positives (label 1): 2 true positives, 1 false positive, 1 false negative
    scores = compute_scores([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0], 2)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["f1"] == pytest.approx(2 / 3)  # precision 2/3, recall 2/3
    # three classes: class 0 right once (F1 1); class 1 one true positive, one false positive (the 2 read as 1)
    # and one false negative (the 1 read as 2), so precision 1/2, recall 1/2, F1 1/2; class 2 no true positive (F1 0)
    # -> macro (1 + 1/2 + 0) / 3 = 1/2
    macro = compute_scores([0, 1, 1, 2], [0, 1, 2, 1], 3)
    assert macro["f1_average"] == "macro" and macro["f1"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_align_labels_labels_first_tokens_only():
    align_labels = notebook_function(NB07, "align_labels")
    assert align_labels([None, 0, 0, 1, 2, 2, 2, None], [5, 6, 7]) == [-100, 5, -100, 6, 7, -100, -100, -100]
    assert align_labels([None, None], []) == [-100, -100]


def test_padding_collator_pads_to_the_longest_row(tokenizer):
    examples = [tokenizer(s) for s in SENTENCES]
    lengths = [len(e["input_ids"]) for e in examples]
    batch = DataCollatorWithPadding(tokenizer)(examples)
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    short = lengths.index(min(lengths))
    assert (batch["input_ids"][short, min(lengths):] == tokenizer.pad_token_id).all()
    fixed = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=32)(examples)
    assert fixed["input_ids"].shape == (2, 32)


def test_token_classification_labels_are_aligned_and_padded_with_minus_100(tokenizer):
    import copy

    from tokenizers import pre_tokenizers

    align_labels = notebook_function(NB07, "align_labels")
    word_tokenizer = copy.deepcopy(tokenizer)
    assert isinstance(word_tokenizer.backend_tokenizer.pre_tokenizer, pre_tokenizers.ByteLevel)
    word_tokenizer.backend_tokenizer.pre_tokenizer.add_prefix_space = True
    words = [["Ana", "vive", "en", "Valparaíso"], ["Hola"]]
    tags = [[1, 0, 0, 2], [0]]
    examples = []
    for ws, ls in zip(words, tags, strict=True):
        encoding = word_tokenizer(ws, is_split_into_words=True)
        pieces = word_tokenizer.convert_ids_to_tokens(encoding["input_ids"])
        assert all(pieces[encoding.word_ids().index(w)].startswith("Ġ") for w in range(len(ws)))  # the space is back
        examples.append({"input_ids": encoding["input_ids"], "labels": align_labels(encoding.word_ids(), ls)})
    batch = DataCollatorForTokenClassification(word_tokenizer)(examples)
    assert batch["labels"].shape == batch["input_ids"].shape
    for row, ls in enumerate(tags):
        assert [x for x in batch["labels"][row].tolist() if x != -100] == ls  # one label per word, in order
    assert (batch["labels"][1, len(examples[1]["input_ids"]):] == -100).all()


def test_seq2seq_collator_pads_labels_and_shifts_decoder_inputs(tokenizer):
    bart = BartForConditionalGeneration(BartConfig(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None))
    examples = [tokenizer("El tren llegó tarde.", text_target="Retraso."),
                tokenizer("Compré pan.", text_target="Una compra de pan en la panadería.")]
    batch = DataCollatorForSeq2Seq(tokenizer, model=bart)(examples)
    target_lengths = [len(e["labels"]) for e in examples]
    assert batch["labels"].shape == (2, max(target_lengths)) != batch["input_ids"].shape
    assert (batch["labels"][0, target_lengths[0]:] == -100).all()
    assert (batch["decoder_input_ids"][:, 0] == tokenizer.eos_token_id).all()
    shifted = batch["labels"][:, :-1].masked_fill(batch["labels"][:, :-1] == -100, tokenizer.pad_token_id)
    assert torch.equal(batch["decoder_input_ids"][:, 1:], shifted)


def test_causal_lm_collator_copies_inputs_and_ignores_padding(tokenizer):
    batch = DataCollatorForLanguageModeling(tokenizer, mlm=False)([tokenizer(s) for s in SENTENCES])
    real = batch["attention_mask"].bool()
    assert torch.equal(batch["labels"][real], batch["input_ids"][real])
    assert (batch["labels"][~real] == -100).all()


def test_whole_word_masking_masks_every_piece_of_a_word(tokenizer):
    texts = ["Compré pan en la panadería de Valparaíso y desoxirribonucleico."] * 8
    encoded = tokenizer(texts, return_offsets_mapping=True)
    examples = [{k: encoded[k][i] for k in encoded} for i in range(len(texts))]
    offsets = encoded["offset_mapping"][0]
    batch = DataCollatorForLanguageModeling(tokenizer, whole_word_mask=True, mlm_probability=0.4,
                                           mask_replace_prob=1.0, random_replace_prob=0.0, seed=0)(examples)
    # word ids from the offsets: a new word starts where a token does not touch the previous one
    word_of, word = [], -1
    for i, (start, end) in enumerate(offsets):
        if start == end:  # special tokens
            word_of.append(None)
            continue
        if i == 0 or offsets[i - 1][1] != start or word_of[-1] is None:
            word += 1
        word_of.append(word)
    masked_any = False
    for row in range(len(texts)):
        masked = (batch["labels"][row] != -100).tolist()
        for w in {x for x in word_of if x is not None}:
            flags = {masked[i] for i, x in enumerate(word_of) if x == w}
            assert len(flags) == 1, f"word {w} partly masked in row {row}"
            masked_any |= True in flags
    assert masked_any


def test_permutation_lm_collator_predicts_the_masked_spans_only(tokenizer):
    ids = [tokenizer(s)["input_ids"] for s in SENTENCES]
    length = max(len(x) for x in ids) + max(len(x) for x in ids) % 2
    even = [x + [tokenizer.pad_token_id] * (length - len(x)) for x in ids]
    torch.manual_seed(0)
    batch = DataCollatorForPermutationLanguageModeling(tokenizer, plm_probability=1 / 6, max_span_length=3)(even)
    assert batch["perm_mask"].shape == batch["target_mapping"].shape == (2, length, length)
    # transformers 5: target_mapping is the identity (position i predicts token i) and what is predicted is told by
    # the labels: the original token where the collator put <mask> in the input, -100 everywhere else
    assert torch.equal(batch["target_mapping"], torch.eye(length).expand(2, length, length))
    original = torch.tensor(even)
    masked = batch["input_ids"] == tokenizer.mask_token_id
    assert masked.any()
    assert torch.equal(batch["labels"][masked], original[masked])
    assert (batch["labels"][~masked] == -100).all()
    assert torch.equal(batch["input_ids"][~masked], original[~masked])  # nothing else is touched
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    assert special.any() and not masked[special].any()  # never <s>, </s> or padding
    # perm_mask hides exactly the masked positions: no position may see one, not even the masked token itself
    assert torch.equal(batch["perm_mask"].amax(dim=1).bool(), masked)
    assert torch.equal(torch.diagonal(batch["perm_mask"], dim1=1, dim2=2).bool(), masked)
    with pytest.raises(ValueError, match="even"):
        DataCollatorForPermutationLanguageModeling(tokenizer)([x[:-1] for x in even])
