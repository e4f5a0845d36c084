"""Notebook 08's measures of generated text, on hand counts."""

from helpers import notebook_function

NB08 = "08_fine_tuning_generation.ipynb"


def test_distinct_pairs_counts_repeated_word_pairs():
    distinct_pairs = notebook_function(NB08, "distinct_pairs")
    assert distinct_pairs("a b a b") == 2 / 3  # (a b), (b a), (a b)
    assert distinct_pairs("la la la la") == 1 / 3
    assert distinct_pairs("una frase sin repetir") == 1.0
    assert distinct_pairs("sola") == 0.0  # no pair at all


def test_words_keeps_lowercased_words_of_four_letters_or_more():
    words = notebook_function(NB08, "words")
    assert words("El Volcán y la Raíz, carbono: 2024!") == ["volcán", "raíz", "carbono", "2024"]
