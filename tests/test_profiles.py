import dataclasses

import pytest

import nlp_course
from nlp_course import profiles
from nlp_course.profiles import PROFILES, UnknownProfileError, get_profile


def test_argument_wins_over_environment(monkeypatch):
    monkeypatch.setenv("NLP_COURSE_PROFILE", "colab")
    assert get_profile("full").name == "full"


def test_environment_wins_over_detection(monkeypatch):
    monkeypatch.setenv("NLP_COURSE_PROFILE", "colab")
    monkeypatch.setattr(profiles, "detect_profile_name", lambda: pytest.fail("detection must not run"))
    assert get_profile().name == "colab"


def test_names_are_case_and_space_insensitive():
    assert get_profile(" TOY ").name == "toy"


def test_detection_without_gpu_is_toy(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_profile().name == "toy"


def test_detection_with_gpu_but_offline_is_toy(monkeypatch, offline):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_profile().name == "toy"


def test_detection_with_gpu_and_network_is_colab(monkeypatch):
    import torch


    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(profiles, "hub_available", lambda timeout=2.0: True)
    assert get_profile().name == "colab"


@pytest.mark.parametrize("bad", ["tiny", "", "gpu"])
def test_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(UnknownProfileError) as err:
        get_profile(bad) if bad else get_profile("  ")
    for name in PROFILES:
        assert repr(name) in str(err.value)


def test_unknown_name_from_environment_says_where_it_came_from(monkeypatch):
    monkeypatch.setenv("NLP_COURSE_PROFILE", "huge")
    with pytest.raises(UnknownProfileError, match=r"NLP_COURSE_PROFILE"):
        get_profile()


def test_profiles_scale_up_in_order():
    toy, colab, full = PROFILES["toy"], PROFILES["colab"], PROFILES["full"]
    for field in ("vocab_size", "hidden_size", "num_layers", "seq_length", "max_steps"):
        assert getattr(toy, field) <= getattr(colab, field) <= getattr(full, field), field
    assert toy.tokens_per_step < colab.tokens_per_step < full.tokens_per_step
    assert all(p.hidden_size % p.num_heads == 0 for p in PROFILES.values())


def test_toy_profile_is_offline_only():
    toy = PROFILES["toy"]
    assert toy.corpus_es == "corpus_es" and toy.code_corpus == "stdlib" and not toy.streaming
    assert "/" not in toy.reviews_es + toy.reviews_en


def test_profile_prints_every_field_as_a_table():
    # the toy profile as setup_notebook would fill it on an A100, and changed where toy has round numbers
    profile = dataclasses.replace(PROFILES["toy"], vocab_size=1234, learning_rate=3e-4, max_documents=5000,
                                  device="cuda", precision="bf16")
    header, *lines = str(profile).splitlines()
    assert header == "Profile 'toy'"
    rows = [tuple(line.strip().split(maxsplit=1)) for line in lines]
    assert [label for label, _ in rows] == [f.name for f in dataclasses.fields(nlp_course.Profile)]  # in order
    assert len({len(line) - len(value) for line, (_, value) in zip(lines, rows, strict=True)}) == 1  # one column
    printed = dict(rows)
    assert (printed["name"], printed["vocab_size"], printed["learning_rate"]) == ("'toy'", "1234", "0.0003")
    assert (printed["max_documents"], printed["tokenizer_documents"], printed["streaming"]) == ("5000", "None", "False")
    assert (printed["device"], printed["precision"]) == ("'cuda'", "'bf16'")  # this profile's, not the defaults
    assert printed["code_corpus"] == "'stdlib'" and printed["seq_length"] == "128"
    assert printed["description"] == repr(profile.description)


def test_profile_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["toy"].vocab_size = 3
