"""The Colab path, rehearsed: every notebook through the ``colab`` profile's own Hub calls, offline.

    python tools/rehearse.py                          # every notebook
    python tools/rehearse.py notebooks/07_*.ipynb     # some of them

It builds the stand-in repositories of the manifest from the course's data
(``tools/standin_repos.py``), serves them as a local Hub endpoint (``tools/standin_hub.py``), and
runs each notebook top to bottom with ``NLP_COURSE_PROFILE=rehearsal`` (colab's sources and code
paths at toy sizes), ``HF_ENDPOINT`` pointing at the stand-in and an empty Hugging Face cache, so
that ``load_dataset(id, config, streaming=True)`` and ``from_pretrained(id)`` run exactly as on
Colab. It prints each notebook's name with its result and exits with 1 if any failed. Executed
copies are written to ``outputs/rehearsal/`` (the failing one as far as it ran).

``--break KEY:column`` or ``--break KEY:script`` builds one stand-in faulty, to see the rehearsal fail.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tools.notebooks import execute  # noqa: E402
from tools.standin_hub import StandinHub  # noqa: E402
from tools.standin_repos import build  # noqa: E402


def rehearsal_env(hub_url: str, workdir: Path) -> dict[str, str]:
    """The environment each notebook kernel inherits: the stand-in Hub, an empty cache, the rehearsal profile."""
    return {
        "HF_ENDPOINT": hub_url,
        "HF_HOME": str(workdir / "hf_home"),  # an empty cache: every asset comes from the stand-in
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "NLP_COURSE_PROFILE": "rehearsal",
        "NLP_COURSE_OUTPUTS": str(workdir / "outputs"),  # tokenizers and checkpoints of this rehearsal only
        "TOKENIZERS_PARALLELISM": "false",
    }


def error_summary(err: Exception) -> str:
    """The cell's error in one line: the exception's last line, as a reader of the traceback would look for it."""
    text = str(getattr(err, "evalue", "") or err)
    name = getattr(err, "ename", type(err).__name__)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line.strip()[:400]
    return f"{name}: {lines[-1].strip()[:400] if lines else ''}"


def rehearse(notebooks: list[Path], faults: list[str] = (), out: Path | None = None, timeout: int = 600,
             keys: list[str] | None = None) -> dict:
    """Run ``notebooks`` against a fresh stand-in Hub (of the manifest ``keys``, default all); return
    ``{name: (ok, seconds, message)}``."""
    import nbformat

    out = out or REPO_ROOT / "outputs" / "rehearsal"
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        build(workdir / "hub", keys, faults=list(faults))
        print(f"stand-in Hub built in {time.perf_counter() - start:.0f} s", flush=True)
        with StandinHub(workdir / "hub") as hub:
            saved = dict(os.environ)
            os.environ.update(rehearsal_env(hub.url, workdir))
            try:
                for path in notebooks:
                    started = time.perf_counter()
                    try:
                        nb, _ = execute(path, timeout=timeout, partial=out / path.name)
                        nbformat.write(nb, out / path.name)
                        results[path.name] = (True, time.perf_counter() - started, "")
                    except Exception as err:  # noqa: BLE001 - a notebook's failure is a result to report
                        results[path.name] = (False, time.perf_counter() - started, error_summary(err))
                    ok, seconds, message = results[path.name]
                    print(f"{path.name}: {'ok' if ok else 'FAILED'} ({seconds:.0f} s){'  ' + message if message else ''}",
                          flush=True)
            finally:
                os.environ.clear()
                os.environ.update(saved)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--break", dest="faults", action="append", default=[], metavar="KEY:FAULT",
                        help="build one stand-in faulty: KEY:column or KEY:script")
    parser.add_argument("--out", type=Path, help="where executed copies go (default: outputs/rehearsal)")
    parser.add_argument("--only", nargs="+", metavar="KEY", help="build only these stand-ins (default: all)")
    args = parser.parse_args(argv)
    notebooks = sorted(args.notebooks or (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    results = rehearse(notebooks, args.faults, args.out, keys=args.only)
    failed = [name for name, (ok, _, _) in results.items() if not ok]
    total = sum(seconds for _, seconds, _ in results.values())
    print(f"rehearsal: {len(results) - len(failed)} of {len(results)} notebooks ran top to bottom in {total:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
