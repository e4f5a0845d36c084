import pytest


@pytest.fixture(autouse=True)
def _no_profile_env(monkeypatch):
    """Each test starts without a profile chosen from the environment."""
    monkeypatch.delenv("NLP_COURSE_PROFILE", raising=False)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
