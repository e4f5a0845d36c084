"""Every Hugging Face Hub asset the course loads, in one table: the manifest.

The notebooks and command lines read Hub ids from here (through the profiles) instead of writing them
in their code, so that one table says what a classroom must be able to download, what
``python -m nlp_course.prefetch`` fetches, and what the stand-in Hub of the rehearsal must imitate.

Each ``HubAsset`` records what the course relies on: the repository, the configuration and splits it
loads, the columns (and label names) its code reads, the files a model needs, roughly how much a
classroom downloads, and ``source``, the page the schema facts were taken from. ``standin`` describes
the layout of the tiny stand-in repository built by ``tools/standin_repos.py`` (the same file formats,
paths, config names, splits, columns and label names as the real repository, at a tiny size).

Nothing here touches the network; ``assets_for(profile_name)`` lists what a profile uses.

Taught in: no notebook; read by ``profiles``, ``prefetch`` and the rehearsal tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HubAsset:
    """One Hub repository the course loads, and exactly what it relies on in it."""

    key: str  # the course's name for it
    kind: str  # "dataset" or "model"
    repo_id: str
    purpose: str
    used_by: tuple[str, ...]  # notebooks and command lines that load it
    source: str  # where the schema facts below come from (dataset card, model page, file listing)
    config: str | None = None  # dataset configuration (the Hub's "subset")
    splits: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()  # dataset columns the course reads or that the real data has
    labels: tuple[str, ...] = ()  # ClassLabel names, in order
    files: tuple[str, ...] = ()  # what prefetch downloads (allow_patterns); plain names must exist (--check)
    streaming: bool = False  # loaded with streaming=True (only the first documents are read)
    download: str = ""  # roughly what prefetch downloads
    standin: dict = field(default_factory=dict, hash=False, compare=False)  # layout of the stand-in repository

    @property
    def repo_type(self) -> str:
        return "dataset" if self.kind == "dataset" else "model"

    @property
    def url(self) -> str:
        prefix = "datasets/" if self.kind == "dataset" else ""
        return f"https://huggingface.co/{prefix}{self.repo_id}"


ASSETS: dict[str, HubAsset] = {}


def _add(asset: HubAsset) -> HubAsset:
    ASSETS[asset.key] = asset
    return asset


_add(HubAsset(
    key="corpus_es", kind="dataset", repo_id="wikimedia/wikipedia", config="20231101.es", splits=("train",),
    columns=("id", "url", "title", "text"), files=("20231101.es/train-00000-of-*.parquet",), streaming=True,
    purpose="Spanish prose: tokenizers, n-grams, RoBERTa pretraining, GPT-2 fine-tuning",
    used_by=("01", "02", "03", "04", "08", "pretrain mlm"),
    source="https://huggingface.co/datasets/wikimedia/wikipedia (tree: 20231101.es/train-000NN-of-00013.parquet, "
           "13 shards of about 0.25 to 0.7 GB; card: one folder per <date>.<language> config, columns id, url, title, text)",
    download="the first parquet shard of 20231101.es, about 0.7 GB (the course streams 20,000 articles at most)",
    standin={"layout": "parquet-config-folders", "shards": 2, "source_data": "corpus_es"},
))
_add(HubAsset(
    key="reviews_es", kind="dataset", repo_id="mteb/tweet_sentiment_multilingual", config="spanish",
    splits=("train", "validation", "test"), columns=("text", "label"), labels=("negative", "neutral", "positive"),
    files=("*/spanish.jsonl.gz", "README.md"),
    purpose="Spanish tweets, three sentiment classes: notebook 07's fine-tuning",
    used_by=("07", "finetune"),
    source="https://huggingface.co/datasets/mteb/tweet_sentiment_multilingual (README configs: spanish = "
           "train/spanish.jsonl.gz, validation/spanish.jsonl.gz, test/spanish.jsonl.gz), a script-free copy of "
           "cardiffnlp/tweet_sentiment_multilingual, whose loading script datasets 5 refuses (its card: 1,838 / 323 / "
           "869 tweets, labels negative, neutral, positive). Not verified: that the copy's label is a plain integer "
           "(as in mteb's other tweet sets) and that it has no other columns; the loader names integer labels from "
           "this entry either way",
    download="about 0.2 MB",
    standin={"layout": "jsonl-gz-config", "source_data": "reviews_es", "int_labels": True},
))
_add(HubAsset(
    key="reviews_en", kind="dataset", repo_id="cornell-movie-review-data/rotten_tomatoes",
    splits=("train", "validation", "test"), columns=("text", "label"), labels=("neg", "pos"),
    files=("*.parquet", "README.md"),
    purpose="the slides' movie reviews (8,530 / 1,066 / 1,066), two classes",
    used_by=("07", "finetune"),
    source="https://huggingface.co/datasets/cornell-movie-review-data/rotten_tomatoes (tree: train.parquet, "
           "validation.parquet, test.parquet at the root since its script was removed; card: 8,530 / 1,066 / 1,066 "
           "rows; features text (string), label (ClassLabel neg, pos))",
    download="about 0.7 MB",
    standin={"layout": "parquet-root", "source_data": "reviews_en"},
))
_add(HubAsset(
    key="code", kind="dataset", repo_id="codeparrot/codeparrot-clean-valid", splits=("train",),
    columns=("repo_name", "path", "copies", "size", "content", "license", "hash", "line_mean", "line_max",
             "alpha_frac", "autogenerated"),
    files=("*.json.gz",), streaming=True,
    purpose="Python files already cleaned by CodeParrot's filters: the code tokenizer and GPT-2 pretraining",
    used_by=("03", "06", "pretrain clm"),
    source="https://huggingface.co/datasets/codeparrot/codeparrot-clean-valid (card: 61,373 rows, one split "
           "'train', the 11 columns of codeparrot-clean; files named file-NNNNNNNNNNNN.json.gz as written by "
           "CodeParrot's preprocessing script; the exact file names of this repository are not verified)",
    download="about 0.2 GB of gzipped JSON lines",
    standin={"layout": "json-gz", "source_data": "stdlib"},
))
_add(HubAsset(
    key="code_raw", kind="dataset", repo_id="transformersbook/codeparrot", splits=("train",),
    columns=("repo_name", "path", "copies", "size", "content", "license"),
    files=("file-000000000001.json.gz",), streaming=True,
    purpose="raw Python files from GitHub, duplicates and all: notebook 06's cleaning table",
    used_by=("06",),
    source="https://huggingface.co/datasets/transformersbook/codeparrot (card: about 22 million Python files, "
           "180 GB (50 GB compressed), about 70 % duplicated; gzipped JSON-lines shards file-NNNNNNNNNNNN.json.gz, "
           "columns repo_name, path, copies, size, content, license; its query kept files of 1 KB to 1 MB)",
    download="the first gzipped JSON-lines file, about 0.25 GB (the notebook streams a few thousand files)",
    standin={"layout": "json-gz", "source_data": "stdlib-raw"},
))
_add(HubAsset(
    key="code_full", kind="dataset", repo_id="codeparrot/codeparrot-clean", splits=("train",),
    columns=("repo_name", "path", "copies", "size", "content", "license", "hash", "line_mean", "line_max",
             "alpha_frac", "autogenerated"),
    files=("file-000000000001.json.gz",), streaming=True,
    purpose="the whole cleaned CodeParrot corpus, streamed, for the full profile",
    used_by=("pretrain clm --profile full",),
    source="https://huggingface.co/datasets/codeparrot/codeparrot-clean (card: ~50 GB and 5,361,373 files after "
           "exact deduplication and the line-length, alphanumeric-fraction and auto-generated filters)",
    download="streamed; prefetch takes one file of about 0.25 GB",
    standin={"layout": "json-gz", "source_data": "stdlib"},
))
_add(HubAsset(
    key="tokenizer_en", kind="model", repo_id="google-bert/bert-base-uncased",
    files=("config.json", "tokenizer.json", "tokenizer_config.json", "*.txt"),
    purpose="BERT's WordPiece tokenizer, on the slide's English sentence (notebook 01)",
    used_by=("01",),
    source="https://huggingface.co/google-bert/bert-base-uncased/tree/main",
    download="under 1 MB (tokenizer files only)",
    standin={"layout": "tokenizer", "tokenizer": "wordpiece", "model_type": "bert"},
))
_add(HubAsset(
    key="tokenizer_gpt2", kind="model", repo_id="openai-community/gpt2",
    files=("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.*", "*.txt"),
    purpose="GPT-2's byte-level BPE, compared with the course's code tokenizer (notebook 03)",
    used_by=("03",),
    source="https://huggingface.co/openai-community/gpt2/tree/main",
    download="about 2 MB (tokenizer files only)",
    standin={"layout": "tokenizer", "tokenizer": "byte-bpe", "model_type": "gpt2"},
))
_add(HubAsset(
    key="encoder_multilingual", kind="model", repo_id="FacebookAI/xlm-roberta-base",
    files=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "*.model"),
    purpose="a multilingual encoder fine-tuned on Spanish tweets (notebook 07 on Colab)",
    used_by=("07", "finetune"),
    source="https://huggingface.co/FacebookAI/xlm-roberta-base/tree/main",
    download="about 1.1 GB",
    standin={"layout": "model", "tokenizer": "unigram", "model_type": "xlm-roberta"},
))
_add(HubAsset(
    key="gpt2_es", kind="model", repo_id="flax-community/gpt-2-spanish",
    files=("config.json", "model.safetensors", "tokenizer.json", "*.txt", "*.json"),
    purpose="a Spanish GPT-2 small, fine-tuned on Wikipedia in notebook 08",
    used_by=("08",),
    source="https://huggingface.co/flax-community/gpt-2-spanish/tree/main (model.safetensors on main since its "
           "PR #1; tokenizer.json; flax_model.msgpack; trained from scratch on the Spanish part of OSCAR)",
    download="about 0.5 GB",
    standin={"layout": "model", "tokenizer": "byte-bpe", "model_type": "gpt2"},
))

PROFILE_ASSETS: dict[str, tuple[str, ...]] = {
    "toy": (),
    "rehearsal": ("corpus_es", "reviews_es", "reviews_en", "code", "code_raw", "tokenizer_en", "tokenizer_gpt2",
                  "encoder_multilingual", "gpt2_es"),
    "colab": ("corpus_es", "reviews_es", "reviews_en", "code", "code_raw", "tokenizer_en", "tokenizer_gpt2",
              "encoder_multilingual", "gpt2_es"),
    "full": ("corpus_es", "reviews_es", "reviews_en", "code_full", "tokenizer_en", "tokenizer_gpt2",
             "encoder_multilingual", "gpt2_es"),
}


def asset(key: str) -> HubAsset:
    """The manifest entry called ``key`` (``KeyError`` names the valid keys)."""
    if key not in ASSETS:
        raise KeyError(f"No Hub asset {key!r} in the manifest; known: {', '.join(ASSETS)}")
    return ASSETS[key]


def assets_for(profile_name: str) -> list[HubAsset]:
    """The Hub assets a profile uses (none for ``toy``), in manifest order."""
    if profile_name not in PROFILE_ASSETS:
        raise KeyError(f"No profile {profile_name!r}; known: {', '.join(PROFILE_ASSETS)}")
    return [ASSETS[key] for key in PROFILE_ASSETS[profile_name]]


def by_repo_id(repo_id: str) -> HubAsset | None:
    """The manifest entry for a repository id, or None."""
    return next((a for a in ASSETS.values() if a.repo_id == repo_id), None)
