"""The colab profile's Hub path, offline: the manifest, the prefetch, and a rehearsal that can fail.

The stand-in repositories (tools/standin_repos.py) are served by tools/standin_hub.py; the course's
own code runs in child processes with ``HF_ENDPOINT`` pointing at the stand-in, because the Hugging
Face libraries read their endpoint and offline mode when they are imported.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nlp_course.data import load_corpus
from nlp_course.hub_assets import ASSETS, PROFILE_ASSETS, assets_for
from nlp_course.profiles import PROFILES
from tools.standin_hub import StandinHub
from tools.standin_repos import build

ROOT = Path(__file__).resolve().parent.parent
HUB_ID = re.compile(r"""["']([A-Za-z0-9][\w.-]*/[\w.-]+)["']""")


@pytest.fixture(scope="module")
def standin_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("standin")
    build(root, ["corpus_es", "reviews_es", "reviews_en", "gpt2_es"])
    return root


def course_env(hub_url: str, home: Path, offline: bool) -> dict[str, str]:
    env = dict(os.environ, HF_ENDPOINT=hub_url, HF_HOME=str(home), HF_HUB_DISABLE_XET="1",
               HF_UPDATE_DOWNLOAD_COUNTS="0", HF_HUB_OFFLINE="1" if offline else "0", HF_DATASETS_OFFLINE="0")
    return env


def python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)


# ------------------------------------------------------------------------------------------------
# The manifest
# ------------------------------------------------------------------------------------------------
def hub_ids_in_code() -> dict[str, set[str]]:
    """Every string that looks like a Hub id in the notebooks' code cells and the package, by where it is."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                found.setdefault(path.name, set()).update(HUB_ID.findall(cell.source))
    for path in sorted((ROOT / "nlp_course").glob("*.py")):
        if path.name == "hub_assets.py":
            continue
        strings = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)
                   and isinstance(n.value, str)}
        found.setdefault(path.name, set()).update(s for s in strings if HUB_ID.fullmatch(f'"{s}"'))
    return found


NOT_HUB_IDS = {"train/loss", "train/lr", "train/tokens", "eval/loss", "eval/perplexity", "your-name/python-code-tokenizer",
               "course/20"}  # the task id of the problem a learner writes in notebook 09's exercise 5


def test_every_hub_id_the_course_loads_is_in_the_manifest():
    known = {a.repo_id for a in ASSETS.values()}
    strays = {where: sorted(ids - known - NOT_HUB_IDS) for where, ids in hub_ids_in_code().items()}
    strays = {where: ids for where, ids in strays.items() if ids and not all(i.startswith(("data/", "outputs/")) for i in ids)}
    assert strays == {}, "Hub ids written in code instead of read from nlp_course/hub_assets.py"


def test_the_id_checker_sees_an_id_written_in_a_notebook():
    cell = 'tokenizer = AutoTokenizer.from_pretrained("someone/some-model")'
    assert HUB_ID.findall(cell) == ["someone/some-model"]


def test_profiles_take_their_hub_sources_from_the_manifest():
    for name in ("colab", "full", "rehearsal"):
        profile, keys = PROFILES[name], PROFILE_ASSETS[name]
        used = {ASSETS[k].repo_id for k in keys}
        assert {profile.corpus_es, profile.reviews_es, profile.reviews_en, profile.code_corpus} <= used, name
        assert profile.corpus_es_config == ASSETS["corpus_es"].config
    assert PROFILE_ASSETS["rehearsal"] == PROFILE_ASSETS["colab"], "the rehearsal must exercise what colab loads"
    assert assets_for("toy") == []
    assert all(a.source.startswith("https://huggingface.co/") for a in ASSETS.values())


# ------------------------------------------------------------------------------------------------
# Prefetch, then offline
# ------------------------------------------------------------------------------------------------
def test_prefetch_into_an_empty_cache_then_an_offline_run_uses_it(standin_root, tmp_path):
    home = tmp_path / "hf_home"
    keys = "corpus_es reviews_es gpt2_es"
    with StandinHub(standin_root) as hub:
        done = python(f"from nlp_course.prefetch import main; main(['--profile', 'colab', '--only', *'{keys}'.split()])",
                      course_env(hub.url, home, offline=False))
        assert done.returncode == 0, done.stderr
        assert "3 assets" in done.stdout and "in the cache" in done.stdout
    # the server is gone: only the cache can answer now
    offline = course_env("http://127.0.0.1:9", home, offline=True)
    code = """
import json
import os
from transformers import AutoTokenizer
from nlp_course.data import load_corpus, load_labelled
corpus = load_corpus("wikimedia/wikipedia", config="20231101.es", streaming=True, max_documents=2)
tweets = load_labelled("mteb/tweet_sentiment_multilingual", config="spanish")
tokenizer = AutoTokenizer.from_pretrained("flax-community/gpt-2-spanish")
from nlp_course.runtime import can_load
print(json.dumps({"can_load": [can_load("flax-community/gpt-2-spanish"), can_load("FacebookAI/xlm-roberta-base")],"titles": [r["title"] for r in corpus], "labels": tweets["train"].features["label"].names,
                  "rows": {k: v.num_rows for k, v in tweets.items()}, "eos": tokenizer.eos_token}), flush=True)
os._exit(0)  # a streamed parquet can leave pyarrow threads that abort at interpreter exit ("terminate called")
"""
    done = python(code, offline)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    docs = load_corpus("corpus_es")["text"]  # the stand-in's shard 0 holds documents 0, 2, 4...; prefetch took only it
    assert result["titles"] == [docs[0].splitlines()[0][:60], docs[2].splitlines()[0][:60]]
    assert result["labels"] == ["negative", "neutral", "positive"]
    assert result["rows"] == {"train": 100, "validation": 20, "test": 20}
    assert result["eos"] == "<|endoftext|>"
    assert result["can_load"] == [True, False]  # offline: what the prefetch cached, and nothing else


def test_offline_an_uncached_asset_fails_at_once_saying_what_to_do(tmp_path):
    done = python("from nlp_course.data import load_labelled; load_labelled('cornell-movie-review-data/rotten_tomatoes')",
                  course_env("http://127.0.0.1:9", tmp_path / "empty", offline=True))
    assert done.returncode != 0
    assert "HubUnavailableError" in done.stderr and "python -m nlp_course.prefetch" in done.stderr


def test_prefetch_check_finds_a_renamed_column(tmp_path):
    root = tmp_path / "hub"
    build(root, ["reviews_en"], faults=["reviews_en:column"])
    with StandinHub(root) as hub:
        done = subprocess.run([sys.executable, "-m", "nlp_course.prefetch", "--check", "--only", "reviews_en"],
                              env=course_env(hub.url, tmp_path / "home", offline=False), capture_output=True,
                              text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 2
    assert "has no column(s) ['text']" in done.stderr and "review" in done.stderr


# ------------------------------------------------------------------------------------------------
# The rehearsal can fail
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault, message", [
    ("reviews_en:column", "has no column 'text'"),
    ("reviews_en:script", "ships a loading script"),
])
def test_a_faulty_standin_fails_the_rehearsal_with_a_clear_message(fault, message, tmp_path):
    notebook = ROOT / "notebooks" / "07_fine_tuning_classification.ipynb"
    done = subprocess.run([sys.executable, "tools/rehearse.py", str(notebook), "--break", fault, "--out", str(tmp_path),
                           "--only", "reviews_en"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "NLP_COURSE_PROFILE")})
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("07_fine_tuning_classification.ipynb:"))
    assert "FAILED" in line and message in line
    assert "0 of 1 notebooks ran" in done.stdout
