"""tools/standin_hub.py: the unchanged huggingface_hub, transformers and datasets calls, answered offline.

The libraries read ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` into module constants when they are imported
(huggingface_hub.constants, datasets.config, and the root conftest.py sets ``HF_HUB_OFFLINE=1`` for the
whole test run), so patching them in this process would be fragile. The library calls run instead in two
child processes, one online and one with ``HF_HUB_OFFLINE=1``, sharing a fresh ``HF_HOME``; each runs its
steps in order, records every result (or the exception it raised) as JSON, and the tests below check those
records. The server runs in this process, with tree pages of 3 entries so that listings paginate.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tools.standin_hub import StandinHub, serve

ROWS = [{"text": f"row {i}", "label": i % 2} for i in range(6)]
TEST_ROWS = [{"text": f"test {i}", "label": 1} for i in range(2)]
WORDS = "el la de que y en un una es por con no se los las".split()
CARD = """---
configs:
- config_name: pq
  data_files:
  - split: train
    path: data/pq/train-*.parquet
  - split: test
    path: data/pq/test-*.parquet
- config_name: mini
  data_files:
  - split: train
    path: data/pq/test-*.parquet
---
# Tiny cards
"""
LINES_CARD = """---
configs:
- config_name: js
  data_files:
  - split: train
    path: data/js/train.jsonl
- config_name: gz
  data_files:
  - split: train
    path: data/gz/*.json.gz
---
# Tiny lines
"""


# -- building the repositories ---------------------------------------------------------------------
def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _write_jsonl(path: Path, rows: list[dict[str, Any]], compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)


def _build_model(folder: Path) -> None:
    """A WordLevel tokenizer and a one-layer GPT-2 saved as safetensors, as a Hub model repo holds them."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(["[UNK]", "[PAD]", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=32, vocab_size=len(vocab))
    GPT2LMHeadModel(config).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny gpt2\n")


def _build_cards(folder: Path) -> None:
    """A dataset repo with two YAML configs over parquet files."""
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(CARD)
    _write_parquet(folder / "data/pq/train-00000-of-00001.parquet", ROWS)
    _write_parquet(folder / "data/pq/test-00000-of-00001.parquet", TEST_ROWS)


def _build_lines(folder: Path) -> None:
    """A dataset repo with YAML configs over jsonl and .json.gz files (datasets wants one format per repo)."""
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(LINES_CARD)
    _write_jsonl(folder / "data/js/train.jsonl", ROWS[:4])
    _write_jsonl(folder / "data/gz/train.json.gz", ROWS[2:], compress=True)


def build_hub(root: Path) -> Path:
    """The repositories the tests download from, under ``root``."""
    _build_model(root / "models/tiny/gpt2")
    _build_cards(root / "datasets/tiny/cards")
    _build_lines(root / "datasets/tiny/lines")
    _build_cards(root / "datasets/tiny/snaponly")  # only ever snapshot_download-ed, never load_dataset-ed
    inferred = root / "datasets/tiny/inferred"
    _write_parquet(inferred / "data/train-00000-of-00001.parquet", ROWS)
    _write_parquet(inferred / "data/test-00000-of-00001.parquet", TEST_ROWS)
    scripted = root / "datasets/tiny/scripted"
    scripted.mkdir(parents=True)
    (scripted / "scripted.py").write_text("import datasets\n")
    _write_jsonl(scripted / "data/train.jsonl", ROWS)
    odd = root / "datasets/tiny/odd/notes"
    odd.mkdir(parents=True)
    (odd / "día 1.txt").write_text("hola")
    return root


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory) -> Path:
    return build_hub(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def hub(hub_root):
    with StandinHub(hub_root, page_size=3) as server:
        yield server


# -- the library calls, in child processes --------------------------------------------------------
PRELUDE = """
import json, os, sys, traceback
from pathlib import Path
ROOT = Path(sys.argv[1]); OUT = Path(sys.argv[2]); results = {}

def step(name):
    def run(fn):
        try:
            results[name] = {"ok": fn()}
        except BaseException as e:
            results[name] = {"error": [c.__name__ for c in type(e).__mro__], "message": str(e)[:2000],
                             "trace": traceback.format_exc()[-3000:]}
        return fn
    return run

def rows(ds, n=None):
    return [dict(r) for i, r in zip(range(n or 10**9), ds)]
"""

ONLINE = """
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download, snapshot_download
api = HfApi()
MODEL = ROOT / "models/tiny/gpt2"; CARDS = ROOT / "datasets/tiny/cards"

@step("download")
def _():
    path = hf_hub_download("tiny/gpt2", "config.json")
    weights = hf_hub_download("tiny/gpt2", "model.safetensors", local_dir=OUT.parent / "local")
    return {"same": Path(path).read_bytes() == (MODEL / "config.json").read_bytes(), "path": path,
            "local_dir": Path(weights).read_bytes() == (MODEL / "model.safetensors").read_bytes()}

@step("model_info")
def _():
    info = api.model_info("tiny/gpt2", files_metadata=True)
    lfs = {s.rfilename: s.lfs["sha256"] for s in info.siblings if s.lfs}
    return {"sha": info.sha, "files": sorted(s.rfilename for s in info.siblings), "lfs": lfs,
            "sha_info": api.model_info("tiny/gpt2", revision=info.sha).sha,
            "config": info.config, "card_license": info.card_data.license}

@step("dataset_info")
def _():
    info = api.dataset_info("tiny/cards")
    return {"files": sorted(s.rfilename for s in info.siblings),
            "configs": [c["config_name"] for c in info.card_data.configs]}

@step("listing")
def _():
    return {"files": api.list_repo_files("tiny/cards", repo_type="dataset"),
            "tree": [(type(e).__name__, e.path) for e in api.list_repo_tree("tiny/cards", "data/pq",
                                                                          repo_type="dataset")],
            "refs": [b.name for b in api.list_repo_refs("tiny/gpt2").branches],
            "paths_info": [e.path for e in api.get_paths_info("tiny/gpt2", ["config.json", "nope", "README.md"])],
            "exists": [api.repo_exists("tiny/gpt2"), api.repo_exists("tiny/nope"),
                       api.repo_exists("tiny/cards", repo_type="dataset"),
                       api.file_exists("tiny/gpt2", "config.json"), api.file_exists("tiny/gpt2", "nope.json"),
                       api.file_exists("tiny/gpt2", "config.json", revision="v9")]}

@step("hffs")
def _():
    fs = HfFileSystem()
    local = (CARDS / "data/pq/train-00000-of-00001.parquet").read_bytes()
    with fs.open("datasets/tiny/cards/data/pq/train-00000-of-00001.parquet", "rb", block_size=16) as f:
        f.seek(10)
        part = f.read(40)
    return {"ls": sorted(fs.ls("datasets/tiny/lines/data", detail=False)),
            "glob": sorted(fs.glob("datasets/tiny/cards/**/*.parquet")),
            "size": fs.info("datasets/tiny/cards/data/pq/train-00000-of-00001.parquet")["size"] == len(local),
            "range": part == local[10:50],
            "whole": fs.read_bytes("datasets/tiny/cards/data/pq/train-00000-of-00001.parquet") == local}

@step("snapshot_patterns")
def _():
    folder = Path(snapshot_download("tiny/gpt2", allow_patterns=["*.json"]))
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

@step("snapshot_dataset")
def _():
    folder = Path(snapshot_download("tiny/snaponly", repo_type="dataset"))
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

@step("transformers")
def _():
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained("tiny/gpt2")
    ids = tok("el perro de la casa")["input_ids"]
    model = AutoModelForCausalLM.from_pretrained("tiny/gpt2", use_safetensors=True)
    saved = load_file(str(MODEL / "model.safetensors"))
    state = model.state_dict()
    return {"ids": ids, "decoded": tok.decode(ids), "n_layer": AutoConfig.from_pretrained("tiny/gpt2").n_layer,
            "class": type(model).__name__,
            "equal": all(torch.equal(state[k], v) for k, v in saved.items()) and len(saved) > 0}

@step("datasets")
def _():
    from datasets import load_dataset
    out = {}
    out["pq"] = rows(load_dataset("tiny/cards", "pq", split="train"))
    out["pq_test"] = rows(load_dataset("tiny/cards", "pq", split="test"))
    out["mini"] = rows(load_dataset("tiny/cards", "mini", split="train"))
    out["js"] = rows(load_dataset("tiny/lines", "js", split="train"))
    out["gz"] = rows(load_dataset("tiny/lines", "gz", split="train"))
    out["pq_stream"] = rows(load_dataset("tiny/cards", "pq", split="train", streaming=True), 3)
    out["gz_stream"] = rows(load_dataset("tiny/lines", "gz", split="train", streaming=True), 3)
    inferred = load_dataset("tiny/inferred")
    out["inferred"] = {split: rows(ds) for split, ds in inferred.items()}
    out["inferred_stream"] = rows(load_dataset("tiny/inferred", split="test", streaming=True))
    return out

def _error(fn):
    try:
        fn()
    except Exception as e:
        return [[c.__name__ for c in type(e).__mro__], str(e)[:300]]
    return None

@step("errors")
def _():
    from datasets import load_dataset
    return {"repo": _error(lambda: hf_hub_download("tiny/nope", "config.json")),
            "file": _error(lambda: hf_hub_download("tiny/gpt2", "nope.json")),
            "revision": _error(lambda: hf_hub_download("tiny/gpt2", "config.json", revision="v9")),
            "info": _error(lambda: api.dataset_info("tiny/nope")),
            "tokenizer": _error(lambda: __import__("transformers").AutoTokenizer.from_pretrained("tiny/nope")),
            "dataset": _error(lambda: load_dataset("tiny/nope", split="train")),
            "script": _error(lambda: load_dataset("tiny/scripted", split="train"))}

OUT.write_text(json.dumps(results))
"""

OFFLINE = """
@step("download")
def _():
    from huggingface_hub import hf_hub_download
    return Path(hf_hub_download("tiny/gpt2", "config.json")).read_bytes() == (
        ROOT / "models/tiny/gpt2/config.json").read_bytes()

@step("snapshot")
def _():
    from huggingface_hub import snapshot_download
    folder = Path(snapshot_download("tiny/gpt2", allow_patterns=["*.json"]))
    return sorted(p.name for p in folder.iterdir())

@step("tokenizer")
def _():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained("tiny/gpt2")("el perro de la casa")["input_ids"]

for name, streaming in [("snaponly", False), ("snaponly", True), ("cards", False), ("cards", True)]:
    @step(f"{name}_{'stream' if streaming else 'load'}")
    def _():
        from datasets import load_dataset
        return rows(load_dataset(f"tiny/{name}", "pq", split="train", streaming=streaming), 3)

@step("snapshot_folder")
def _():
    from datasets import load_dataset
    from huggingface_hub import snapshot_download
    folder = snapshot_download("tiny/snaponly", repo_type="dataset")
    return rows(load_dataset(folder, "pq", split="train"), 3)

OUT.write_text(json.dumps(results))
"""


def _run(script: str, hub: StandinHub, hf_home: Path, out: Path, offline: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_UPDATE_DOWNLOAD_COUNTS="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        TRANSFORMERS_VERBOSITY="error",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(script)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(hub.root), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0 and out.exists(), proc.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(hub, tmp_path_factory) -> dict[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("hf")
    online = _run(ONLINE, hub, work / "home", work / "online.json", offline=False)
    offline = _run(OFFLINE, hub, work / "home", work / "offline.json", offline=True)
    return {"online": online, "offline": offline}


def _ok(record: dict[str, Any]) -> Any:
    assert "ok" in record, record.get("trace") or record
    return record["ok"]


# -- plain HTTP ------------------------------------------------------------------------------------
def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_resolve_headers_ranges_and_errors(hub, hub_root):
    local = (hub_root / "models/tiny/gpt2/model.safetensors").read_bytes()
    url = f"{hub.url}/tiny/gpt2/resolve/main/model.safetensors"
    status, headers, body = _request(url, "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(local)
    assert headers["X-Linked-Etag"].strip('"') == hashlib.sha256(local).hexdigest()
    assert headers["X-Linked-Size"] == str(len(local)) and len(headers["X-Repo-Commit"]) == 40
    assert not [h for h in headers if h.lower().startswith("x-xet")]
    status, headers, body = _request(url, headers={"Range": "bytes=5-14"})
    assert (status, body, headers["Content-Range"]) == (206, local[5:15], f"bytes 5-14/{len(local)}")
    status, _, body = _request(url, headers={"Range": "bytes=-4"})
    assert (status, body) == (206, local[-4:])
    status, _, body = _request(url, headers={"Range": "bytes=0-1,4-5"})  # multi-range: ignored
    assert (status, body) == (200, local)
    status, headers, _ = _request(url, headers={"Range": f"bytes={len(local)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(local)}"
    expected = {
        "/tiny/nope/resolve/main/config.json": (404, "RepoNotFound"),
        "/tiny/gpt2/resolve/v9/config.json": (404, "RevisionNotFound"),
        "/tiny/gpt2/resolve/main/nope.json": (404, "EntryNotFound"),
        "/datasets/tiny/gpt2/resolve/main/config.json": (404, "RepoNotFound"),
        "/tiny/gpt2/resolve/main/../../../etc/passwd": (404, "EntryNotFound"),
    }
    for path, (code, error_code) in expected.items():
        status, headers, _ = _request(hub.url + path)
        assert (status, headers["X-Error-Code"]) == (code, error_code), path
    encoded = "/datasets/tiny/odd/resolve/refs%2Fheads%2Fmain/notes/d%C3%ADa%201.txt"  # as hf_hub_url quotes
    assert _request(hub.url + encoded)[:3:2] == (200, b"hola")
    status, _, body = _request(f"{hub.url}/api/datasets/tiny/odd/tree/main/notes")
    assert json.loads(body)[0]["path"] == "notes/día 1.txt"


def test_tree_pagination_and_commit_revision(hub):
    status, headers, body = _request(f"{hub.url}/api/datasets/tiny/lines/tree/main?recursive=true")
    first = json.loads(body)
    assert status == 200 and len(first) == 3 and 'rel="next"' in headers["Link"]
    entries, link = list(first), headers["Link"]
    while link:
        _, headers, body = _request(link.split(";")[0].strip("<>"))
        entries += json.loads(body)
        link = headers.get("Link")
    assert [(e["type"], e["path"]) for e in entries] == [
        ("file", "README.md"),
        ("directory", "data"),
        ("directory", "data/gz"),
        ("file", "data/gz/train.json.gz"),
        ("directory", "data/js"),
        ("file", "data/js/train.jsonl"),
    ]
    sha = json.loads(_request(f"{hub.url}/api/datasets/tiny/lines")[2])["sha"]
    status, _, body = _request(f"{hub.url}/api/datasets/tiny/lines/tree/{sha}/data%2Fjs")
    assert status == 200 and [e["path"] for e in json.loads(body)] == ["data/js/train.jsonl"]


def test_serve_helper_and_command_line(hub_root):
    server = serve(hub_root)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert _request(f"{server.url}/api/models/tiny/gpt2")[0] == 200
    finally:
        server.stop()
    server.stop()  # idempotent
    script = Path(__file__).resolve().parent.parent / "tools/standin_hub.py"
    command = [sys.executable, str(script), "serve", "--root", str(hub_root)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            first, export = proc.stdout.readline(), proc.stdout.readline()
            url = export.strip().removeprefix("export HF_ENDPOINT=")
            assert export.startswith("export HF_ENDPOINT=http://127.0.0.1:") and url in first
            assert _request(f"{url}/datasets/tiny/lines/resolve/main/README.md")[2].decode() == LINES_CARD
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()  # never hang the test run on a server that ignored Ctrl-C
                raise
        assert code == 0 and proc.stderr.read() == ""  # quiet: no line per request


# -- huggingface_hub -------------------------------------------------------------------------------
def test_hf_hub_download_and_info(runs, hub_root):
    online = runs["online"]
    download = _ok(online["download"])
    assert download["same"] and "models--tiny--gpt2" in download["path"] and download["local_dir"]
    info = _ok(online["model_info"])
    model_files = sorted(p.name for p in (hub_root / "models/tiny/gpt2").iterdir())
    assert info["files"] == model_files and info["sha_info"] == info["sha"] and len(info["sha"]) == 40
    assert list(info["lfs"]) == ["model.safetensors"] and info["config"]["model_type"] == "gpt2"
    assert info["card_license"] == "apache-2.0"
    assert _ok(online["dataset_info"])["configs"] == ["pq", "mini"]


def test_listing_and_existence(runs):
    listing = _ok(runs["online"]["listing"])
    assert listing["files"] == [
        "README.md",
        "data/pq/test-00000-of-00001.parquet",
        "data/pq/train-00000-of-00001.parquet",
    ]
    assert listing["tree"] == [
        ["RepoFile", "data/pq/test-00000-of-00001.parquet"],
        ["RepoFile", "data/pq/train-00000-of-00001.parquet"],
    ]
    assert listing["refs"] == ["main"] and listing["paths_info"] == ["config.json", "README.md"]
    assert listing["exists"] == [True, False, True, True, False, False]


def test_hf_file_system(runs):
    hffs = _ok(runs["online"]["hffs"])
    assert hffs["ls"] == ["datasets/tiny/lines/data/gz", "datasets/tiny/lines/data/js"]
    assert hffs["glob"] == [
        "datasets/tiny/cards/data/pq/test-00000-of-00001.parquet",
        "datasets/tiny/cards/data/pq/train-00000-of-00001.parquet",
    ]
    assert hffs["size"] and hffs["range"] and hffs["whole"]


def test_snapshot_download(runs):
    assert _ok(runs["online"]["snapshot_patterns"]) == [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert "data/pq/train-00000-of-00001.parquet" in _ok(runs["online"]["snapshot_dataset"])


def test_errors_are_the_hubs(runs):
    errors = _ok(runs["online"]["errors"])
    assert "RepositoryNotFoundError" in errors["repo"][0] and "RepositoryNotFoundError" in errors["info"][0]
    assert "RemoteEntryNotFoundError" in errors["file"][0] and "EntryNotFoundError" in errors["file"][0]
    assert "RevisionNotFoundError" in errors["revision"][0]
    assert "OSError" in errors["tokenizer"][0] and "tiny/nope" in errors["tokenizer"][1]
    assert "DatasetNotFoundError" in errors["dataset"][0]
    assert (
        errors["script"][0][0] == "RuntimeError"
        and "Dataset scripts are no longer supported" in errors["script"][1]
    )


# -- transformers and datasets ---------------------------------------------------------------------
def test_transformers_from_pretrained(runs):
    result = _ok(runs["online"]["transformers"])
    assert result["ids"] == [2, 0, 4, 3, 0] and result["decoded"] == "el [UNK] de la [UNK]"
    assert result["n_layer"] == 1 and result["class"] == "GPT2LMHeadModel" and result["equal"]


def test_load_dataset(runs):
    loaded = _ok(runs["online"]["datasets"])
    assert loaded["pq"] == ROWS and loaded["pq_test"] == TEST_ROWS and loaded["mini"] == TEST_ROWS
    assert loaded["js"] == ROWS[:4] and loaded["gz"] == ROWS[2:]
    assert loaded["pq_stream"] == ROWS[:3] and loaded["gz_stream"] == ROWS[2:5]
    assert loaded["inferred"] == {"train": ROWS, "test": TEST_ROWS} and loaded["inferred_stream"] == TEST_ROWS


def test_offline_from_cache(runs):
    offline = runs["offline"]
    assert _ok(offline["download"]) is True
    # offline, snapshot_download answers with the cached snapshot folder: every file cached so far is there
    assert set(_ok(runs["online"]["snapshot_patterns"])) < set(_ok(offline["snapshot"]))
    assert _ok(offline["tokenizer"]) == [2, 0, 4, 3, 0]
    # tiny/cards was prepared by load_dataset online: datasets finds its own Arrow cache, streaming or not
    assert _ok(offline["cards_load"]) == ROWS[:3] and _ok(offline["cards_stream"]) == ROWS[:3]
    # tiny/snaponly was only snapshot_download-ed: datasets 5 does not look in the huggingface_hub cache
    for key in ("snaponly_load", "snaponly_stream"):
        assert (
            offline[key]["error"][0] == "ConnectionError"
            and "OfflineModeIsEnabled" in offline[key]["message"]
        )
    assert _ok(offline["snapshot_folder"]) == ROWS[:3]  # ... but the snapshot folder loads as a local dataset
