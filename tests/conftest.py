import os

import pytest

from nlp_course.tokenization import course_tokenizer


@pytest.fixture(autouse=True)
def _no_profile_env(monkeypatch):
    """Each test starts without a profile chosen from the environment."""
    monkeypatch.delenv("NLP_COURSE_PROFILE", raising=False)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """The course's Spanish tokenizer (toy profile), trained into a temporary outputs folder once per module.

    A module that needs another tokenizer (the code one, in test_clm.py) defines its own ``tokenizer``.
    """
    os.environ["NLP_COURSE_OUTPUTS"] = str(tmp_path_factory.mktemp("outputs"))
    try:
        return course_tokenizer("es", "toy", verbose=False)
    finally:
        del os.environ["NLP_COURSE_OUTPUTS"]
