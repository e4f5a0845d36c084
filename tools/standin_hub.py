"""A stand-in for the Hugging Face Hub that serves a local folder over HTTP, for offline tests and rehearsals.

The colab profile of the course downloads tokenizers, models and datasets from the Hub by repository
name. This module lets exactly those calls run with no Internet: point the libraries at the stand-in with
``HF_ENDPOINT=http://127.0.0.1:PORT`` (set before ``huggingface_hub``, ``datasets`` or ``transformers`` are
imported: they read it at import time) and the unchanged calls are answered from a folder laid out as::

    ROOT/models/<owner>/<name>/...files...      ->  "owner/name"                    (models)
    ROOT/datasets/<owner>/<name>/...files...    ->  "owner/name", repo_type="dataset"

A repository is a plain folder, not a git checkout. Its only branch is ``main``; its commit sha is a
sha1 of the file names and contents, so it changes when a file does, and it is accepted as a revision
too. File ids follow the Hub: a git blob sha1 for small text files, and for files the Hub keeps in LFS
(``.safetensors``, ``.parquet``, ``.gz``, ... or anything over 10 MB) a sha256 sent as ``X-Linked-Etag``,
with ``lfs`` metadata in listings.

Verified against huggingface_hub 2.4, datasets 5.2 and transformers 5.24 (tests/test_standin_hub.py):
``hf_hub_download``, ``snapshot_download`` (with ``allow_patterns``), ``HfApi`` ``model_info`` /
``dataset_info`` / ``repo_info`` / ``list_repo_files`` / ``list_repo_tree`` (paginated) /
``get_paths_info`` / ``list_repo_refs`` / ``repo_exists`` / ``file_exists``, ``HfFileSystem`` (ls, glob,
info, open and read with Range requests), ``AutoTokenizer`` / ``AutoConfig`` /
``AutoModelForCausalLM.from_pretrained``, and ``datasets.load_dataset`` from parquet, jsonl and
``.json.gz`` files, with YAML ``configs:`` or with splits inferred from file names, streaming or not.
Missing repositories, revisions and files answer with the Hub's status codes and ``X-Error-Code``
headers, so the libraries raise their usual ``RepositoryNotFoundError``, ``RevisionNotFoundError`` and
``RemoteEntryNotFoundError`` (and ``datasets`` its ``DatasetNotFoundError``). A dataset repository with a
``<name>.py`` loading script reaches datasets' own "Dataset scripts are no longer supported" error.

Not exercised, or not served at all:

* Xet transfers: no ``X-Xet-*`` headers are sent, so every download is a plain HTTP GET (with Range).
* Authentication, private and gated repositories: any token is accepted and ignored, everything is
  public; ``/api/whoami-v2`` and the OAuth routes do not exist.
* Uploads and every write (commits, branches, tags, PRs, discussions, settings): not served.
* Revisions other than ``main`` and the current commit sha; no history (one commit per repository).
* Single-segment repository ids (``gpt2``): a repository is always ``owner/name``.
* Spaces, buckets, collections, search and listing (``list_models``), the dataset viewer
  (``datasets-server``: datasets asks ``datasets-server.<host>``, which does not resolve, and carries on
  without the parquet export), the safetensors-metadata and parquet-export API routes, the CDN redirect
  of LFS files (files are served directly, with a 200), and ``expand=`` filtering (every property is
  always returned). ``/api/agent-harnesses`` (huggingface_hub's agent detection) answers 404 on
  purpose, so nothing is cached in ``HF_HOME`` for a day. ``cardData`` in repo info needs PyYAML
  (optional; the libraries read README.md themselves anyway).
* Offline behaviour is the libraries' own, and datasets' differs from huggingface_hub's: with
  ``HF_HUB_OFFLINE=1``, ``load_dataset("owner/name")`` (streaming or not) only finds what an earlier
  ``load_dataset`` prepared in its Arrow cache; files fetched by ``snapshot_download`` are not used
  (pass the snapshot folder as a local path instead).
* Calls that bypass ``HF_ENDPOINT``: datasets' download counter (a HEAD to s3.amazonaws.com, disable it
  with ``HF_UPDATE_DOWNLOAD_COUNTS=0``) and any absolute ``https://huggingface.co/...`` URL.

Run it from Python::

    with StandinHub(Path("hub_root")) as hub:      # or: hub = serve("hub_root") ... hub.stop()
        env = {**os.environ, "HF_ENDPOINT": hub.url}

or from a shell: ``python tools/standin_hub.py serve --root hub_root [--port 8123] [--verbose]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mimetypes
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO_KINDS = {"models": "model", "datasets": "dataset"}
DEFAULT_BRANCH = "main"
LFS_SUFFIXES = frozenset(
    ".7z .arrow .bin .bz2 .ckpt .ftz .gguf .gz .h5 .joblib .lz4 .mlmodel .model .msgpack .npy .npz .onnx .ot"
    " .parquet .pb .pickle .pkl .pt .pth .rar .safetensors .tar .tflite .tgz .wasm .xz .zip .zst".split()
)
LFS_MIN_SIZE = 10 * 1024 * 1024
SKIPPED_DIRS = frozenset({".git", ".cache"})  # git internals, huggingface_hub's local_dir metadata
CHUNK = 1024 * 1024
COMMIT_TITLE = "Stand-in snapshot of a local folder"


class HubError(Exception):
    """An error answered the way the Hub answers it: status, ``X-Error-Code`` and a message."""

    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


@dataclass(frozen=True)
class Blob:
    """One file of a repository, with the ids the Hub gives it."""

    path: str
    abspath: Path
    size: int
    git_oid: str  # git blob sha1 of the content, or of the LFS pointer for LFS files
    sha256: str | None  # set for LFS files only
    mtime: float

    @property
    def etag(self) -> str:
        """The id huggingface_hub names the cached blob by: the sha256 for LFS files, else the git sha1."""
        return self.sha256 or self.git_oid

    def tree_entry(self) -> dict[str, Any]:
        """The entry of this file in ``/tree`` and ``/paths-info`` answers."""
        entry: dict[str, Any] = {"type": "file", "oid": self.git_oid, "size": self.size, "path": self.path}
        if self.sha256 is not None:
            entry["lfs"] = {
                "oid": self.sha256,
                "size": self.size,
                "pointerSize": len(_lfs_pointer(self.sha256, self.size)),
            }
        return entry

    def sibling(self, blobs: bool) -> dict[str, Any]:
        """The entry of this file in ``siblings`` of the repo info (with sizes only when ``blobs=True``)."""
        if not blobs:
            return {"rfilename": self.path}
        out: dict[str, Any] = {"rfilename": self.path, "size": self.size, "blobId": self.git_oid}
        if self.sha256 is not None:
            out["lfs"] = {
                "sha256": self.sha256,
                "size": self.size,
                "pointerSize": len(_lfs_pointer(self.sha256, self.size)),
            }
        return out


@dataclass
class Snapshot:
    """The state of one repository folder at the time of a request."""

    kind: str  # "model" or "dataset"
    repo_id: str
    folder: Path
    files: dict[str, Blob] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    sha: str = ""
    last_modified: str = ""

    def is_revision(self, revision: str) -> bool:
        """Whether ``revision`` names this snapshot: ``main`` (any spelling) or the commit sha."""
        return revision in (DEFAULT_BRANCH, f"refs/heads/{DEFAULT_BRANCH}", self.sha)

    def check_revision(self, revision: str) -> None:
        """Raise the Hub's RevisionNotFound error unless ``revision`` names this snapshot."""
        if not self.is_revision(revision):
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def dir_entry(self, path: str) -> dict[str, Any]:
        """The entry of a folder in ``/tree`` and ``/paths-info`` answers."""
        oid = hashlib.sha1(f"{self.sha}:{path}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": path}

    def entry(self, path: str) -> dict[str, Any] | None:
        """The tree entry of a file or folder, or None if the path does not exist."""
        if path in self.files:
            return self.files[path].tree_entry()
        if path in self.dirs:
            return self.dir_entry(path)
        return None


def _lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in git for an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class RepoStore:
    """Reads repositories from ``root`` and hashes their files (hashes are cached by size and mtime)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._hashes: dict[tuple[str, int, int], tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    def snapshot(self, kind_dir: str, owner: str, name: str) -> Snapshot:
        """Scan one repository folder, or raise the Hub's RepoNotFound error."""
        if not _safe_segment(owner) or not _safe_segment(name):
            raise HubError(404, "RepoNotFound", "Repository not found")
        folder = self.root / kind_dir / owner / name
        if not folder.is_dir():
            raise HubError(404, "RepoNotFound", "Repository not found")
        snap = Snapshot(REPO_KINDS[kind_dir], f"{owner}/{name}", folder)
        newest = folder.stat().st_mtime
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            rel_dir = Path(dirpath).relative_to(folder).as_posix()
            prefix = "" if rel_dir == "." else rel_dir + "/"
            snap.dirs.update(prefix + d for d in dirnames)
            for filename in sorted(filenames):
                blob = self._blob(Path(dirpath) / filename, prefix + filename)
                snap.files[blob.path] = blob
                newest = max(newest, blob.mtime)
        digest = hashlib.sha1()
        for path in sorted(snap.files):
            digest.update(f"{path}\0{snap.files[path].git_oid}\n".encode())
        snap.sha = digest.hexdigest()
        snap.last_modified = _iso(newest)
        return snap

    def _blob(self, abspath: Path, path: str) -> Blob:
        stat = abspath.stat()
        key = (str(abspath), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._hashes.get(key)
        if cached is None:
            if abspath.suffix.lower() in LFS_SUFFIXES or stat.st_size >= LFS_MIN_SIZE:
                sha256 = _file_digest(abspath, hashlib.sha256())
                pointer = _lfs_pointer(sha256, stat.st_size)  # like git-lfs: the git object is the pointer
                cached = (hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest(), sha256)
            else:
                cached = (_file_digest(abspath, hashlib.sha1(b"blob %d\0" % stat.st_size)), None)
            with self._lock:
                self._hashes[key] = cached
        git_oid, sha256 = cached
        return Blob(path, abspath, stat.st_size, git_oid, sha256, stat.st_mtime)


def _file_digest(abspath: Path, digest: Any) -> str:
    """Feed the file to ``digest`` in chunks (model weights can be gigabytes) and return its hex digest."""
    with open(abspath, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_segment(segment: str) -> bool:
    return bool(segment) and segment not in (".", "..") and "/" not in segment and "\\" not in segment


def _card_data(snap: Snapshot) -> dict[str, Any] | None:
    """The YAML front matter of README.md as a dict (None without a card, or without PyYAML installed)."""
    readme = snap.files.get("README.md")
    if readme is None:
        return None
    text = readme.abspath.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    parts = text.split("\n---", 1)
    if len(parts) < 2:
        return None
    try:
        import yaml  # optional: only used to fill `cardData`, which the libraries re-read from README.md
    except ImportError:
        return None
    try:
        data = yaml.safe_load(parts[0][3:])
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def repo_info(snap: Snapshot, blobs: bool) -> dict[str, Any]:
    """The JSON answer of ``/api/{models,datasets}/{repo_id}[/revision/{rev}]``."""
    owner = snap.repo_id.split("/")[0]
    info: dict[str, Any] = {
        "_id": hashlib.sha1(snap.repo_id.encode()).hexdigest()[:24],
        "id": snap.repo_id,
        "author": owner,
        "sha": snap.sha,
        "lastModified": snap.last_modified,
        "createdAt": snap.last_modified,
        "private": False,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": [snap.files[p].sibling(blobs) for p in sorted(snap.files)],
    }
    card = _card_data(snap)
    if card is not None:
        info["cardData"] = card
    if snap.kind == "model":
        info["modelId"] = snap.repo_id
        config = _model_config(snap)
        if config:
            info["config"] = config
    if blobs:
        info["usedStorage"] = sum(b.size for b in snap.files.values())
    return info


def _model_config(snap: Snapshot) -> dict[str, Any]:
    blob = snap.files.get("config.json")
    if blob is None:
        return {}
    try:
        config = json.loads(blob.abspath.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return {}
    return {k: config[k] for k in ("architectures", "model_type") if isinstance(config, dict) and k in config}


def tree_entries(snap: Snapshot, path: str, recursive: bool) -> list[dict[str, Any]]:
    """Entries below folder ``path`` ("" for the root), as ``/api/.../tree/{rev}/{path}`` lists them."""
    if path and path not in snap.dirs:
        if path in snap.files:
            raise HubError(400, None, f"'{path}' is a file, not a folder")
        raise HubError(404, "EntryNotFound", f'{path} does not exist on "{DEFAULT_BRANCH}"')
    prefix = path + "/" if path else ""
    out = []
    for name in sorted(snap.dirs | set(snap.files)):
        if not name.startswith(prefix):
            continue
        if not recursive and "/" in name[len(prefix) :]:
            continue
        out.append(snap.entry(name))
    return out


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes")


class HubHandler(BaseHTTPRequestHandler):
    """Routes one request to the Hub endpoint it imitates."""

    protocol_version = "HTTP/1.1"
    server_version = "StandinHub/1.0"
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: _HubServer

    # -- plumbing ---------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        """Log a line per request only when the server is verbose."""
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        """Answer a GET (file contents or API JSON)."""
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        """Answer a HEAD (file metadata)."""
        self._dispatch(head=True)

    def do_POST(self) -> None:
        """Answer a POST (only ``paths-info``)."""
        self._dispatch(head=False, post=True)

    def _dispatch(self, head: bool, post: bool = False) -> None:
        try:
            split = urlsplit(self.path)
            self.query = parse_qs(split.query, keep_blank_values=True)
            segments = [unquote(s) for s in split.path.split("/")[1:]]
            body = self._read_body() if post else b""
            if self._is_datasets_server():
                raise HubError(404, None, "The dataset viewer is not served by the stand-in Hub")
            if segments and segments[0] == "api":
                self._api(segments[1:], body, head, post)
            elif not post:
                self._resolve(segments, head)
            else:
                raise HubError(405, None, "Method not allowed")
        except HubError as error:
            self._send_error(error, head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # an unexpected bug: answer 500 rather than drop the connection
            if self.server.verbose:
                self.log_error("internal error: %r", error)
            self._send_error(HubError(500, None, f"Internal error: {error!r}"), head)
            self.close_connection = True  # the failure may have come after part of an answer

    def _is_datasets_server(self) -> bool:
        return self.headers.get("Host", "").startswith("datasets-server.")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, payload: Any, head: bool, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _send_error(self, error: HubError, head: bool) -> None:
        data = json.dumps({"error": error.message}).encode()
        try:
            self.send_response(error.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if error.code is not None:
                self.send_header("X-Error-Code", error.code)
            message = " ".join(error.message.encode("ascii", "replace").decode().split())  # one header line
            self.send_header("X-Error-Message", message)
            if error.commit is not None:
                self.send_header("X-Repo-Commit", error.commit)
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- files ------------------------------------------------------------------------------------
    def _resolve(self, segments: list[str], head: bool) -> None:
        """``/{owner}/{name}/resolve/{rev}/{path}`` and ``/datasets/{owner}/{name}/resolve/...``."""
        kind_dir = "models"
        if segments and segments[0] == "datasets":
            kind_dir, segments = "datasets", segments[1:]
        elif segments and segments[0] in ("spaces", "buckets", "kernels"):
            raise HubError(404, "RepoNotFound", "Repository not found")
        if len(segments) < 4 or segments[2] != "resolve":
            raise HubError(404, None, "Not found: the stand-in Hub only serves /resolve/ URLs and /api/")
        snap = self.server.store.snapshot(kind_dir, segments[0], segments[1])
        revision, rest = _split_revision(segments[3:])
        snap.check_revision(revision)
        path = "/".join(rest)
        blob = snap.files.get(path)
        if blob is None:
            raise HubError(404, "EntryNotFound", "Entry not found", commit=snap.sha)
        self._send_file(snap, blob, head)

    def _send_file(self, snap: Snapshot, blob: Blob, head: bool) -> None:
        start, end = 0, blob.size - 1
        status = 200
        range_header = self.headers.get("Range")
        if range_header:
            try:
                parsed = _parse_range(range_header, blob.size)
            except ValueError:  # not a single byte range: ignored, like many servers do
                parsed = (start, end)
            else:
                if parsed is None:
                    self._send_unsatisfiable(snap, blob)
                    return
                status = 206
            start, end = parsed
        length = max(end - start + 1, 0)
        self.send_response(status)
        self.send_header("Content-Type", mimetypes.guess_type(blob.path)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{blob.etag}"')
        self.send_header("X-Repo-Commit", snap.sha)
        self.send_header("Last-Modified", _http_date(blob.mtime))
        if blob.sha256 is not None:
            self.send_header("X-Linked-Etag", f'"{blob.sha256}"')
            self.send_header("X-Linked-Size", str(blob.size))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{blob.size}")
        self.end_headers()
        if head or length == 0:
            return
        with open(blob.abspath, "rb") as handle:
            handle.seek(start)
            remaining = length
            while remaining > 0:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    def _send_unsatisfiable(self, snap: Snapshot, blob: Blob) -> None:
        data = json.dumps({"error": "Requested range not satisfiable"}).encode()
        self.send_response(416)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Range", f"bytes */{blob.size}")
        self.send_header("X-Repo-Commit", snap.sha)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # -- API --------------------------------------------------------------------------------------
    def _api(self, segments: list[str], body: bytes, head: bool, post: bool) -> None:
        """``/api/{models,datasets}/{owner}/{name}[/revision/{rev}|/tree/...|/paths-info/...|...]``."""
        if len(segments) < 3 or segments[0] not in REPO_KINDS:
            raise HubError(404, None, "Not found: this API route is not served by the stand-in Hub")
        snap = self.server.store.snapshot(segments[0], segments[1], segments[2])
        action, args = (segments[3], segments[4:]) if len(segments) > 3 else ("", [])
        if post and action != "paths-info":
            raise HubError(405, None, "Method not allowed")
        if action == "" or action == "revision":
            revision = "/".join(args) if action else DEFAULT_BRANCH
            snap.check_revision(revision)
            self._send_json(repo_info(snap, _flag(self._param("blobs"))), head)
        elif action == "tree":
            self._api_tree(snap, args, head)
        elif action == "paths-info":
            self._api_paths_info(snap, args, body, head)
        elif action == "refs":
            self._send_json(_refs(snap), head)
        elif action == "commits":
            revision, _ = _split_revision(args or [DEFAULT_BRANCH])
            snap.check_revision(revision)
            self._send_json([_commit(snap)], head)
        else:
            raise HubError(404, None, f"Not found: /api/.../{action} is not served by the stand-in Hub")

    def _param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def _api_tree(self, snap: Snapshot, args: list[str], head: bool) -> None:
        if not args:
            raise HubError(404, None, "Not found: a revision is required")
        revision, rest = _split_revision(args)
        snap.check_revision(revision)
        expand = _flag(self._param("expand"))
        entries = tree_entries(snap, "/".join(rest).strip("/"), _flag(self._param("recursive")))
        if expand:
            entries = [{**e, "lastCommit": _last_commit(snap)} for e in entries]
        page_size = self.server.page_size if not expand else min(self.server.page_size, 50)
        start = int(self._param("cursor") or 0)
        page = entries[start : start + page_size]
        extra = {}
        if start + page_size < len(entries):
            query = "&".join(
                f"{quote(k)}={quote(v[-1])}" for k, v in self.query.items() if k != "cursor" and v
            )
            host = self.headers.get("Host") or self.server.url.split("://", 1)[1]
            base = f"http://{host}{urlsplit(self.path).path}"
            extra["Link"] = f'<{base}?{query}&cursor={start + page_size}>; rel="next"'
        self._send_json(page, head, extra)

    def _api_paths_info(self, snap: Snapshot, args: list[str], body: bytes, head: bool) -> None:
        revision, _ = _split_revision(args or [DEFAULT_BRANCH])
        snap.check_revision(revision)
        content_type = self.headers.get("Content-Type", "")
        if "json" in content_type:
            payload = json.loads(body or b"{}")
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _flag((form.get("expand") or ["false"])[-1])
        if isinstance(paths, str):
            paths = [paths]
        out = []
        for path in paths:
            entry = snap.entry(path.strip("/"))
            if entry is not None:
                out.append({**entry, "lastCommit": _last_commit(snap)} if expand else entry)
        self._send_json(out, head)


def _split_revision(segments: list[str]) -> tuple[str, list[str]]:
    """Split ``rev/path...`` where an unencoded ``refs/pr/N``-style revision spans three segments."""
    if len(segments) >= 3 and segments[0] == "refs" and segments[1] in ("pr", "convert", "heads", "tags"):
        return "/".join(segments[:3]), segments[3:]
    return segments[0], segments[1:]


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive ``(start, end)`` of a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range.

    None when the range is unsatisfiable (416); ValueError when it is not a single byte range.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec or "-" not in spec:
        raise ValueError(header)
    first, _, last = (part.strip() for part in spec.partition("-"))
    if first == "":
        suffix = int(last)
        return (max(size - suffix, 0), size - 1) if suffix > 0 and size > 0 else None
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def _http_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _last_commit(snap: Snapshot) -> dict[str, str]:
    return {"id": snap.sha, "title": COMMIT_TITLE, "date": snap.last_modified}


def _commit(snap: Snapshot) -> dict[str, Any]:
    return {
        "id": snap.sha,
        "title": COMMIT_TITLE,
        "message": "",
        "authors": [{"user": snap.repo_id.split("/")[0], "avatar": None}],
        "date": snap.last_modified,
    }


def _refs(snap: Snapshot) -> dict[str, Any]:
    main = {"name": DEFAULT_BRANCH, "ref": f"refs/heads/{DEFAULT_BRANCH}", "targetCommit": snap.sha}
    return {"branches": [main], "converts": [], "tags": []}


class _HubServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # snapshot_download opens 8 connections at once
    store: RepoStore
    verbose: bool
    page_size: int
    url: str

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about dropped connections unless verbose."""
        if self.verbose:
            super().handle_error(request, client_address)


class StandinHub:
    """Serve ``root`` as a Hub on ``127.0.0.1:port`` (0: a free port) from a daemon thread.

    ``page_size`` caps the entries of one ``/tree`` page (the Hub's is 1000), so that tests can
    exercise the ``Link`` pagination with small repositories.
    """

    def __init__(
        self, root: Path | str, port: int = 0, verbose: bool = False, *, page_size: int = 1000
    ) -> None:
        self.root = Path(root)
        self.port = port
        self.verbose = verbose
        self.page_size = page_size
        self.url = ""
        self._server: _HubServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandinHub:
        """Bind the port and start serving; returns self. ``url`` is set once this returns."""
        if self._server is not None:
            return self
        server = _HubServer(("127.0.0.1", self.port), HubHandler)
        server.store = RepoStore(self.root)
        server.verbose = self.verbose
        server.page_size = self.page_size
        self.port = server.server_address[1]
        self.url = server.url = f"http://127.0.0.1:{self.port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="standin-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> StandinHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(root: Path | str, port: int = 0, verbose: bool = False) -> StandinHub:
    """Start a :class:`StandinHub` on ``root`` and return it (call ``stop()`` when done)."""
    return StandinHub(Path(root), port=port, verbose=verbose).start()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``serve --root DIR [--port N] [--verbose]``, until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="serve a folder of repositories as a Hub")
    serve_parser.add_argument("--root", required=True, type=Path, help="folder with models/ and datasets/")
    serve_parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    serve_parser.add_argument("--verbose", action="store_true", help="log one line per request")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"--root {args.root} is not a folder")
    # Ctrl-C stops it, even when started from a shell that ignores SIGINT for background jobs (Python then
    # leaves SIGINT ignored): the rehearsal and the tests stop it that way
    signal.signal(signal.SIGINT, signal.default_int_handler)
    hub = serve(args.root, port=args.port, verbose=args.verbose)
    try:
        sys.stdout.write(f"Stand-in Hub serving {args.root.resolve()} at {hub.url}\n")
        sys.stdout.write(f"export HF_ENDPOINT={hub.url}\n")
        sys.stdout.flush()
        threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
