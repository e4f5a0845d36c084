"""Build tiny stand-in repositories for every Hub asset of the manifest, from the course's own data.

    python tools/standin_repos.py build --root outputs/standin_hub          # every asset of the rehearsal
    python tools/standin_repos.py build --root DIR --break reviews_en:column  # a faulty stand-in, for tests

Each stand-in has the file layout and schema of the real repository as ``nlp_course.hub_assets``
records it (its ``source`` says where each fact comes from): the same paths and file formats
(parquet, gzipped JSON lines, a README whose YAML declares the configs), the same config names,
splits, columns and label names; for models the same architecture and tokenizer type, at a tiny
size. The contents come from ``data/`` and the standard library, so nothing is downloaded.
``tools/standin_hub.py`` serves the folder as a local Hub endpoint (``HF_ENDPOINT``).

Known differences from the real repositories: the stand-ins hold a few hundred rows, not millions;
the models are a few thousand parameters with vocabularies of about a thousand tokens; XLM-RoBERTa's
stand-in has its Unigram tokenizer in ``tokenizer.json`` only (no ``sentencepiece.bpe.model``); the
Spanish tweets are the course's Spanish reviews, with every fifth one relabelled ``neutral``.

``--break KEY:column`` renames the text column of a dataset, and ``--break KEY:script`` adds a
loading script to it, the two faults the rehearsal must catch.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import datasets  # noqa: E402

from nlp_course.code_corpus import iter_python_files  # noqa: E402
from nlp_course.data import load_corpus, load_labelled  # noqa: E402
from nlp_course.hub_assets import ASSETS, HubAsset, assets_for  # noqa: E402

ENGLISH = [  # a little English for the English tokenizers (the reviews are English too)
    "Using a Transformer network is simple.", "Tokenizers split text into subword units.",
]


def readme(configs: list[tuple[str, dict[str, str]]], pretty: str) -> str:
    """A dataset card whose YAML front matter declares the configs and their data files, as on the Hub."""
    lines = ["---", "configs:"]
    for i, (name, files) in enumerate(configs):
        lines.append(f"- config_name: {name}")
        if i == 0 and len(configs) == 1:
            lines.append("  default: true")
        lines.append("  data_files:")
        for split, path in files.items():
            lines += [f"  - split: {split}", f"    path: {path}"]
    lines += ["---", "", f"# Stand-in for {pretty}", "", "Built by tools/standin_repos.py from the course's own data."]
    return "\n".join(lines) + "\n"


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------------
# Datasets
# ------------------------------------------------------------------------------------------------
def build_wikipedia(asset: HubAsset, repo: Path) -> None:
    """Parquet shards in one folder per ``<date>.<language>`` config, columns id, url, title, text."""
    docs = load_corpus("corpus_es")["text"]
    rows = [{"id": str(i + 1), "url": f"https://es.wikipedia.org/wiki?curid={i + 1}",
             "title": doc.splitlines()[0][:60], "text": doc} for i, doc in enumerate(docs)]
    shards = asset.standin.get("shards", 2)
    folder = repo / asset.config
    folder.mkdir(parents=True)
    for k in range(shards):
        datasets.Dataset.from_list(rows[k::shards]).to_parquet(folder / f"train-{k:05d}-of-{shards:05d}.parquet")
    english = repo / "20231101.en"  # a second config, so that choosing the config matters
    english.mkdir()
    datasets.Dataset.from_list([{"id": "1", "url": "u", "title": "t", "text": t} for t in ENGLISH]).to_parquet(
        english / "train-00000-of-00001.parquet")
    (repo / "README.md").write_text(readme([(asset.config, {"train": f"{asset.config}/train-*"}),
                                            ("20231101.en", {"train": "20231101.en/train-*"})], asset.repo_id))


def build_tweets(asset: HubAsset, repo: Path) -> None:
    """``<split>/<language>.jsonl.gz`` per config; integer labels 0 negative, 1 neutral, 2 positive."""
    reviews = load_labelled("reviews_es")
    names = reviews["train"].features["label"].names
    configs = []
    for language in (asset.config, "english"):
        files = {}
        for split, ds in reviews.items():
            rows = [{"text": r["text"], "label": 1 if i % 5 == 4 else (0 if names[r["label"]] == "negative" else 2)}
                    for i, r in enumerate(ds) if i % 3 == 0]  # a third of the reviews: 100 / 20 / 20
            write_jsonl_gz(repo / split / f"{language}.jsonl.gz", rows)
            files[split] = f"{split}/{language}.jsonl.gz"
        configs.append((language, files))
    (repo / "README.md").write_text(readme(configs, asset.repo_id))


def build_rotten_tomatoes(asset: HubAsset, repo: Path) -> None:
    """``train.parquet``, ``validation.parquet``, ``test.parquet`` at the root; label a ClassLabel(neg, pos)."""
    reviews = load_labelled("reviews_en")
    old = reviews["train"].features["label"].names
    label = datasets.ClassLabel(names=list(asset.labels))
    repo.mkdir(parents=True)
    for split, ds in reviews.items():
        rows = {"text": ds["text"], "label": [0 if old[v].startswith("neg") else 1 for v in ds["label"]]}
        features = datasets.Features({"text": datasets.Value("string"), "label": label})
        datasets.Dataset.from_dict(rows, features=features).to_parquet(repo / f"{split}.parquet")
    (repo / "README.md").write_text(f"# Stand-in for {asset.repo_id}\n")


def code_rows(raw: bool) -> list[dict]:
    """Standard-library files with CodeParrot's columns; ``raw`` adds duplicates and generated files."""
    rows = []
    for i, (path, content) in enumerate(itertools.islice(iter_python_files(), 240)):
        lines = content.splitlines() or [""]
        row = {"repo_name": f"python/cpython-{i % 7}", "path": f"Lib/{path}", "copies": "1",
               "size": str(len(content.encode())), "content": content, "license": "psf-2.0"}
        if not raw:  # the columns CodeParrot's preprocessing adds (its hash: md5 of the stripped content)
            row.update(hash=hashlib.md5(content.strip().encode()).hexdigest(),
                       line_mean=sum(map(len, lines)) / len(lines), line_max=max(map(len, lines)),
                       alpha_frac=sum(c.isalnum() for c in content) / max(1, len(content)), autogenerated=False)
        rows.append(row)
    if raw:  # what the cleaning removes: exact copies, generated files, minified lines
        rows += [dict(r, repo_name=r["repo_name"] + "-fork") for r in rows[:60]]
        rows += [dict(r, path=f"gen/{r['path']}", content="# This file is auto-generated. Do not edit.\n" + r["content"])
                 for r in rows[60:80]]
        rows.append(dict(rows[0], path="min/data.py", content="DATA = [" + ", ".join(map(str, range(3000))) + "]\n"))
    return rows


def build_code(asset: HubAsset, repo: Path) -> None:
    """Gzipped JSON-lines shards ``file-NNNNNNNNNNNN.json.gz``, as CodeParrot's preprocessing script writes them."""
    rows = code_rows(raw=asset.standin.get("raw", False))
    half = len(rows) // 2
    write_jsonl_gz(repo / "file-000000000001.json.gz", rows[:half])
    write_jsonl_gz(repo / "file-000000000002.json.gz", rows[half:])
    (repo / "README.md").write_text(f"# Stand-in for {asset.repo_id}\n")


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
def standin_tokenizer(kind: str):
    """A tokenizer of the real repository's type, trained on the course's texts with a tiny vocabulary."""
    from transformers import BertTokenizer, GPT2Tokenizer, XLMRobertaTokenizer

    from nlp_course.tokenization import train_tokenizer

    texts = list(load_corpus("corpus_es")["text"]) + list(load_labelled("reviews_en")["train"]["text"]) + ENGLISH
    if kind == "wordpiece":  # BERT
        trained = train_tokenizer(texts, "wordpiece", 800, family="bert", lowercase=True)
        return BertTokenizer(tokenizer_object=trained.backend_tokenizer, do_lower_case=True)
    if kind == "byte-bpe":  # GPT-2
        trained = train_tokenizer(texts, "bpe", 600, family="gpt2")
        return GPT2Tokenizer(tokenizer_object=trained.backend_tokenizer, eos_token="<|endoftext|>",
                             bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    trained = train_tokenizer(texts, "unigram", 600, family="t5")  # XLM-RoBERTa: SentencePiece Unigram
    return XLMRobertaTokenizer(tokenizer_object=trained.backend_tokenizer)


def build_model_repo(asset: HubAsset, repo: Path) -> None:
    """The tokenizer of the real type and a config; with ``standin["model"]``, a tiny model of that architecture too."""
    from transformers import AutoConfig, GPT2Config, GPT2LMHeadModel, XLMRobertaConfig, XLMRobertaForMaskedLM

    tokenizer = standin_tokenizer(asset.standin["tokenizer"])
    repo.mkdir(parents=True)
    tokenizer.save_pretrained(repo)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    architecture = asset.standin.get("model")
    if architecture == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2,
                                           n_head=2, **ids))
    elif architecture == "xlm-roberta":
        model = XLMRobertaForMaskedLM(XLMRobertaConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=258, pad_token_id=tokenizer.pad_token_id, **ids))
    else:  # a tokenizer repository as the course uses it: the config says which model it belongs to
        AutoConfig.for_model({"wordpiece": "bert", "byte-bpe": "gpt2"}[asset.standin["tokenizer"]]).save_pretrained(repo)
        return
    model.save_pretrained(repo)  # model.safetensors and config.json


BUILDERS = {"corpus_es": build_wikipedia, "reviews_es": build_tweets, "reviews_en": build_rotten_tomatoes,
            "code": build_code, "code_raw": build_code, "code_full": build_code}


def repo_path(root: Path, asset: HubAsset) -> Path:
    return Path(root) / ("datasets" if asset.kind == "dataset" else "models") / asset.repo_id


def break_repo(root: Path, asset: HubAsset, fault: str) -> None:
    """Make a stand-in faulty: ``column`` renames its text column, ``script`` adds a loading script."""
    repo = repo_path(root, asset)
    if fault == "script":
        name = asset.repo_id.split("/")[1]
        (repo / f"{name}.py").write_text("import datasets\n\nclass Builder(datasets.GeneratorBasedBuilder):\n    pass\n")
        return
    if fault != "column":
        raise SystemExit(f"Unknown fault {fault!r}: use column or script.")
    for path in sorted(repo.rglob("*")):
        if path.suffix == ".parquet":
            ds = datasets.Dataset.from_parquet(str(path))
            ds.rename_column("text", "review").to_parquet(path)
        elif path.name.endswith(".json.gz"):
            rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
            write_jsonl_gz(path, [{("review" if k == "text" else k): v for k, v in r.items()} for r in rows])


def build(root: Path, keys: list[str] | None = None, faults: list[str] = ()) -> list[Path]:
    """Build the stand-ins of ``keys`` (default: every asset of the rehearsal profile) under ``root``, afresh."""
    root = Path(root)
    chosen = [ASSETS[k] for k in keys] if keys else assets_for("rehearsal")
    built = []
    for asset in chosen:
        repo = repo_path(root, asset)
        shutil.rmtree(repo, ignore_errors=True)
        (BUILDERS.get(asset.key) or build_model_repo)(asset, repo)
        built.append(repo)
    for fault in faults:
        key, _, kind = fault.partition(":")
        break_repo(root, ASSETS[key], kind)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--root", type=Path, default=REPO_ROOT / "outputs" / "standin_hub")
    parser.add_argument("--only", nargs="*", help="manifest keys to build (default: all of the rehearsal profile)")
    parser.add_argument("--break", dest="faults", action="append", default=[], metavar="KEY:FAULT",
                        help="make a stand-in faulty: KEY:column or KEY:script")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    for repo in build(args.root, args.only, args.faults):
        print(f"built {repo.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
