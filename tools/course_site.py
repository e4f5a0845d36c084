"""Slides and a static site of the course, built from the notebooks executed at toy scale.

    python tools/course_site.py slides                 # outputs/slides/NAME.slides.html, one reveal.js deck each
    python tools/course_site.py slides notebooks/04_pretraining_roberta.ipynb     # one deck
    python tools/course_site.py site                   # outputs/site/index.html and a page per chapter

Both start from the executed copies in ``outputs/notebooks/`` when those were made from the notebooks as
they are now (the test run leaves them there, as does ``tools/notebooks.py execute``); a notebook without
a current copy is executed first, in the toy profile, offline. The notebooks in ``notebooks/`` are never
changed: slide breaks, presenter notes and page headers are added to copies.

Every page works with no network: reveal.js and require.js (the deck's loader) are copied next to the decks,
in ``_assets/``; they come once from the npm registry, checked against a pinned SHA-512, and are cached in
``~/.cache/nlp_course/``. Formulas are turned into MathML when the pages are built (``latex2mathml``), which
browsers draw natively: no MathJax, and no web fonts, which Chromium refuses to load from file:// pages.

Slides: each ``##`` section starts a slide; a cell that would overflow a projector starts a sub-slide (down
arrow); the set-up cell, the knobs cell and cells of imports only are skipped; long text outputs are cut to a
few lines; prose longer than a slide holds goes to the presenter notes (press ``s``). Site: an index in the
README's order with each chapter's run time and links to Colab and the slides, then each chapter with its
outputs and plots and the time each long cell took.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import html
import io
import os
import re
import sys
import tarfile
import textwrap
import urllib.request
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.notebooks import EXECUTED, execute, source_digest, write_executed  # noqa: E402

TEMPLATES = Path(__file__).resolve().parent / "site_templates"
COLAB = "https://colab.research.google.com/github/nlp-en-es/nlp-de-0-a-100/blob/main/notebooks/{name}"
COURSE = "NLP de 0 a 100 con Hugging Face"
NPM_PACKAGES = {  # name: (tarball, npm's SHA-512 integrity): pinned, checked before use
    "reveal.js": ("https://registry.npmjs.org/reveal.js/-/reveal.js-4.6.1.tgz",
                  "sha512-1CW0auaXNPmwmvQ7TwpszwVxMi2Xr5cTS3J3EBC/HHgbPF32Dn7aiu/LKWDOGjMbaDwKQiGmfqcoGQ74HUHCMw=="),
    "requirejs": ("https://registry.npmjs.org/requirejs/-/requirejs-2.3.8.tgz",
                  "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw=="),
}
WIDGET = "application/vnd.jupyter.widget-view+json"
SLIDE_LINES = 17  # what fits a projector at reveal.js's 1280 x 720 with the course's font size
OUTPUT_LINES = 8  # text output kept on a slide
OUTPUT_ONLY = "course-slide-output-only"  # a cell shown without its code (the code is on the sub-slide before)


class SiteError(RuntimeError):
    """A build that cannot go on; the message says what to do."""


# ------------------------------------------------------------------------------------------------ inputs
def chapters() -> list[dict]:
    """The README's table of notebooks, in its order: number, file, what it teaches, toy and colab times."""
    rows = []
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| (\d\d) \| \[`(\w+)`\]\((notebooks/\w+\.ipynb)\) \| (.+?) \| (.+?) \| (.+?) \|$", line)
        if match:
            number, name, path, teaches, toy, colab = match.groups()
            rows.append({"number": number, "name": name, "path": ROOT / path, "teaches": teaches,
                         "toy": toy, "colab": colab})
    if not rows:
        raise SiteError("README.md has no table of notebooks (rows like '| 01 | [`01_name`](notebooks/01_name.ipynb) | ...').")
    return rows


def title_of(nb: nbformat.NotebookNode) -> str:
    """The chapter's title as plain text: the first Markdown heading of the notebook, without `code` or *emphasis* marks."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return re.sub(r"[`*_]", "", line[2:]).strip()
    raise SiteError("the notebook has no '# Title' heading in a Markdown cell")


def executed(path: Path) -> nbformat.NotebookNode:
    """The executed copy of ``path`` in outputs/notebooks/, made now (toy profile) if missing or stale."""
    copy_path = EXECUTED / path.name
    if copy_path.is_file():
        nb = nbformat.read(copy_path, as_version=4)
        meta = nb.metadata.get("nlp_course", {})
        if meta.get("source_sha256") == source_digest(path) and meta.get("profile") == "toy":
            return nb
        reason = "made from an older version of the notebook" if meta.get("profile", "toy") == "toy" else "of another profile"
    else:
        reason = "missing"
    print(f"{path.name}: its executed copy is {reason}; executing it now (toy profile)...", flush=True)
    os.environ["NLP_COURSE_PROFILE"] = "toy"
    from tools.notebooks import cell_seconds

    try:
        ran, _ = execute(path)
    except Exception as err:
        raise SiteError(f"{path.name} failed when executed: fix it first (python tools/notebooks.py execute {path}).\n{err}") from err
    source = nbformat.read(path, as_version=4)
    write_executed(path, source, {id(o): (c.outputs, cell_seconds(c)) for o, c in zip(source.cells, ran.cells, strict=True)
                                  if c.cell_type == "code"}, executed_by="tools/course_site.py", out=EXECUTED)
    return nbformat.read(copy_path, as_version=4)


# ------------------------------------------------------------------------------------------------ assets
def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nlp_course" / "site-assets"


def npm_package(name: str) -> tarfile.TarFile:
    """The pinned tarball of an npm package, from the cache or the registry, checked against its SHA-512."""
    url, integrity = NPM_PACKAGES[name]
    cached = _cache_dir() / url.rsplit("/", 1)[1]
    if not cached.is_file():
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as err:
            raise SiteError(f"could not download {name} from the npm registry ({err}). Build once with network, or put "
                            f"{url} at {cached}.") from err
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(cached)
    data = cached.read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        cached.unlink()
        raise SiteError(f"{cached.name} does not match its pinned SHA-512 (removed it; run again to download it anew).")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def _extract(archive: tarfile.TarFile, prefix: str, target: Path) -> None:
    for member in archive.getmembers():
        if member.isfile() and member.name.startswith(prefix):
            destination = target / member.name[len(prefix):]
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.extractfile(member).read())


def copy_assets(out: Path) -> None:
    """Put reveal.js and require.js (the deck's loader) in ``out/_assets``."""
    assets = out / "_assets"
    if not (assets / "reveal.js" / "dist" / "reveal.js").is_file():
        reveal = npm_package("reveal.js")
        _extract(reveal, "package/dist/", assets / "reveal.js" / "dist")
        _extract(reveal, "package/plugin/", assets / "reveal.js" / "plugin")
    if not (assets / "require.js").is_file():
        _extract(npm_package("requirejs"), "package/require.js", assets / "require.js")


# ------------------------------------------------------------------------------------------------ shared
def _live_display(output) -> bool:
    """A progress bar shown live: a tqdm widget, or Trainer's HTML bar (``<progress>``) updated in place while it
    runs. An executed copy may hold only its first frame (0 %, "No log"), which would mislead: drop it."""
    data = output.get("data", {})
    return WIDGET in data or "<progress" in data.get("text/html", "")


def _without_widgets_and_noise(nb: nbformat.NotebookNode, keep_stderr: bool) -> None:
    """Progress bars need a live kernel: drop them (see ``_live_display``), and stderr on slides."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if _live_display(output):
                continue
            if output.output_type == "stream" and output.name == "stderr" and not keep_stderr:
                continue
            kept.append(output)
        cell.outputs = kept


def _math_to_mathml(nb: nbformat.NotebookNode) -> None:
    """``$...$`` and ``$$...$$`` in Markdown cells as MathML, which browsers draw with no script and no web font.

    (MathJax would need its web fonts, and Chromium refuses fonts loaded from file:// pages.) Code spans are
    left alone.
    """
    from latex2mathml.converter import convert

    def replace(text: str) -> str:
        text = re.sub(r"\$\$(.+?)\$\$", lambda m: convert(m.group(1).strip(), display="block"), text, flags=re.S)
        return re.sub(r"(?<![\\$])\$([^$\n]+?)\$", lambda m: convert(m.group(1).strip()), text)

    for cell in nb.cells:
        if cell.cell_type == "markdown" and "$" in cell.source:
            parts = re.split(r"(`[^`]*`)", cell.source)  # odd parts are code spans
            cell.source = "".join(part if i % 2 else replace(part) for i, part in enumerate(parts))


def _seconds(cell) -> float:
    return cell.metadata.get("nlp_course", {}).get("seconds", 0.0)


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _inject(page: str, head: str = "", body_start: str = "", body_end: str = "") -> str:
    page = page.replace("</head>", head + "\n</head>", 1)
    page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + body_start, page, count=1)
    return page.replace("</body>", body_end + "\n</body>", 1)


# ------------------------------------------------------------------------------------------------ slides
def _lines(text: str, width: int = 90) -> int:
    return sum(max(1, len(textwrap.wrap(line, width)) if line.strip() else 1) for line in text.splitlines())


def _is_setup(cell) -> bool:
    source = cell.source.strip()
    code = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return (source.startswith("# Set-up") or source.startswith("# Knobs")
            or bool(code) and all(re.match(r"(import |from \S+ import )", line) for line in code))


def _cut_output(output, lines: int = OUTPUT_LINES):
    if output.output_type == "stream":
        text = output.text.splitlines()
        if len(text) > lines:
            output.text = "\n".join(text[:lines] + [f"… {len(text) - lines} more lines (see the site or run the notebook)"]) + "\n"
    elif "text/plain" in output.get("data", {}) and not any(k.startswith("image/") or k == "text/html" for k in output.data):
        text = output.data["text/plain"].splitlines()
        if len(text) > lines:
            output.data["text/plain"] = "\n".join(text[:lines] + [f"… {len(text) - lines} more lines"])
    return output


def _output_lines(output) -> int:
    data = output.get("data", {})
    if any(k.startswith("image/") for k in data):
        return 14
    if "text/html" in data:  # a table
        return min(14, data["text/html"].count("<tr") + 1)
    return _lines(output.get("text", data.get("text/plain", "")))


def _split_prose(source: str, budget: int) -> tuple[str, str]:
    """The paragraphs of ``source`` that fit ``budget`` lines, and the rest (for the presenter notes)."""
    blocks = re.split(r"\n\s*\n", source.strip())
    shown, used = [], 0
    for i, block in enumerate(blocks):
        height = _lines(block) + 1
        if shown and used + height > budget:
            return "\n\n".join(shown), "\n\n".join(blocks[i:])
        shown.append(block)
        used += height
    return "\n\n".join(shown), ""


def _split_at_headings(cells: list) -> list:
    """Markdown cells cut before each ``##``/``###`` heading, so that every section can start a slide."""
    result = []
    for cell in cells:
        if cell.cell_type != "markdown":
            result.append(cell)
            continue
        parts = re.split(r"\n(?=#{2,3} )", cell.source)
        for part in parts:
            if part.strip():
                piece = copy.deepcopy(cell)
                piece.source = part.strip("\n")
                result.append(piece)
    return result


def to_slides(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook with reveal.js slide types set (the notebook format's slideshow metadata)."""
    nb = copy.deepcopy(nb)
    _without_widgets_and_noise(nb, keep_stderr=False)
    _math_to_mathml(nb)
    cells, used = [], SLIDE_LINES  # lines on the current (sub)slide; full at the start

    def add(cell, height, heading=False):
        nonlocal used
        new = "slide" if heading else ("subslide" if used + height > SLIDE_LINES else "-")
        cell.metadata["slideshow"] = {"slide_type": new}
        used = height if new != "-" else used + height
        cells.append(cell)

    for cell in _split_at_headings(nb.cells):
        if cell.cell_type == "code" and (_is_setup(cell) or not cell.source.strip()):
            cell.metadata["slideshow"] = {"slide_type": "skip"}
            cells.append(cell)
        elif cell.cell_type == "markdown":
            shown, notes = _split_prose(cell.source, SLIDE_LINES - 2)
            if notes:
                cell.source = shown + "\n\n*(more in the presenter notes: press s)*"
            add(cell, _lines(cell.source) + 1, heading=bool(re.match(r"#{1,2} ", cell.source)))
            if notes:
                cells.append(nbformat.v4.new_markdown_cell(notes, metadata={"slideshow": {"slide_type": "notes"}}))
        else:
            cell.outputs = [_cut_output(o) for o in cell.outputs]
            code, shown = _lines(cell.source, 120) + 1, sum(_output_lines(o) for o in cell.outputs)
            if cell.outputs and code + shown > SLIDE_LINES:  # the code on one sub-slide, what it printed on the next
                outputs = copy.deepcopy(cell)
                outputs.metadata.setdefault("tags", []).append(OUTPUT_ONLY)
                cell.outputs = []
                add(cell, code)
                add(outputs, SLIDE_LINES + 1)  # always a sub-slide of its own
                used = shown
            else:
                add(cell, code + shown)
    nb.cells = cells
    return nb


SLIDE_STYLE = """<style>
.reveal { font-size: 24px; }
.reveal .slides { text-align: left; }
.reveal .slides section .jp-RenderedMarkdown, .reveal .slides section .jp-RenderedHTMLCommon { font-size: 1em; line-height: 1.35; }
.reveal h1 { font-size: 1.9em; } .reveal h2 { font-size: 1.5em; } .reveal h3 { font-size: 1.2em; }
.reveal img { max-height: 420px; width: auto; }
.reveal pre, .reveal .jp-OutputArea-output pre, .reveal .highlight pre { font-size: 14px; line-height: 1.3; margin: 4px 0; }
.reveal table { font-size: 14px; }
.course-footer { position: fixed; bottom: 6px; left: 12px; font: 13px/1.3 sans-serif; color: #666; z-index: 30; }
</style>"""


def build_slides(paths: list[Path], out: Path) -> list[Path]:
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    config.SlidesExporter.extra_template_basedirs = [str(TEMPLATES)]
    config.SlidesExporter.template_name = "course_reveal"
    config.SlidesExporter.reveal_url_prefix = "_assets/reveal.js"
    config.SlidesExporter.require_js_url = "_assets/require.js"
    config.SlidesExporter.reveal_theme = "white"  # its fonts are in reveal.js' own folder (others load Google's)
    config.SlidesExporter.reveal_number = "c/t"
    config.SlidesExporter.exclude_input_prompt = True  # no In [3]: on a projector
    config.SlidesExporter.exclude_output_prompt = True
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {OUTPUT_ONLY}
    config.SlidesExporter.reveal_width = "1280"  # a 16:9 projector
    config.SlidesExporter.reveal_height = "720"
    exporter = SlidesExporter(config=config)
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out)
    written = []
    for path in paths:
        nb = executed(path)
        title = title_of(nb)
        nb.metadata["title"] = title
        page, _ = exporter.from_notebook_node(to_slides(nb), resources={"metadata": {"name": path.stem}})
        footer = f'<div class="course-footer">{html.escape(COURSE)} · {html.escape(title)}</div>'
        target = out / f"{path.stem}.slides.html"
        _write(target, _inject(page, head=SLIDE_STYLE, body_end=footer))
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: slides of '{title}'")
        written.append(target)
    return written


# ------------------------------------------------------------------------------------------------ site
SITE_STYLE = """<style>
.course-bar { font: 14px/1.5 system-ui, sans-serif; background: #f4f1ea; border-bottom: 1px solid #d8d2c4;
  padding: 8px 20px; display: flex; gap: 18px; flex-wrap: wrap; align-items: baseline; }
.course-bar a { color: #8a3b12; text-decoration: none; } .course-bar a:hover { text-decoration: underline; }
.course-bar .time { margin-left: auto; color: #555; }
.cell-time { font: 12px/1.4 system-ui, sans-serif; color: #777; margin: 2px 0 0 4px; }
</style>"""


def _site_page(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    _without_widgets_and_noise(nb, keep_stderr=True)
    _math_to_mathml(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and _seconds(cell) >= 2:
            cell.outputs.append(nbformat.v4.new_output("display_data", data={
                "text/html": f'<div class="cell-time">this cell took {_format_seconds(_seconds(cell))} in the toy profile</div>',
                "text/plain": f"this cell took {_format_seconds(_seconds(cell))}"}))
    return nb


INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{course}</title>
<style>
body {{ font: 16px/1.55 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; vertical-align: top; padding: 8px 10px; border-bottom: 1px solid #ddd; }}
table {{ table-layout: fixed; }} th:nth-child(1) {{ width: 3em; }} th:nth-child(2) {{ width: 24%; }}
th:nth-child(4) {{ width: 16%; }} th:nth-child(5) {{ width: 8.5em; }}
td.n {{ font-weight: bold; color: #8a3b12; }} td.links a {{ display: block; white-space: nowrap; }}
a {{ color: #8a3b12; }} .note {{ color: #555; font-size: 0.9em; }}
</style></head>
<body>
<h1>{course}</h1>
<p>From <em>what is a token?</em> to pretraining RoBERTa, ELECTRA and GPT-2 from scratch, fine-tuning with
<code>Trainer</code> and evaluating honestly. Each chapter below is a notebook executed in the <code>toy</code> profile
(a 2-core CPU, no network, the course's own data), with its outputs and plots: read it here, then open it on Colab
to run it at the <code>colab</code> profile's scale.</p>
<table>
<thead><tr><th>#</th><th>chapter</th><th>what it teaches</th><th>run time</th><th></th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p class="note">Run times: measured when this site was built ({built}), toy profile; Colab times are those of the
README (estimates until measured on a T4). Source: <a href="{repo}">{repo}</a>.</p>
</body></html>
"""


def _markdown_inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def build_site(out: Path, slides: Path) -> Path:
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    from nlp_course.runtime import REPO_URL

    config = Config()
    config.HTMLExporter.extra_template_basedirs = [str(TEMPLATES)]
    config.HTMLExporter.template_name = "course_lab"
    exporter = HTMLExporter(config=config)
    out.mkdir(parents=True, exist_ok=True)
    rows, entries = [], chapters()
    built = []
    for i, entry in enumerate(entries):
        nb = executed(entry["path"])
        title, meta = title_of(nb), nb.metadata["nlp_course"]
        nb.metadata["title"] = title
        page, _ = exporter.from_notebook_node(_site_page(nb), resources={"metadata": {"name": entry["name"]}})
        links = ['<a href="index.html">↑ all chapters</a>']
        if i > 0:
            links.append(f'<a href="{entries[i - 1]["name"]}.html">← {entries[i - 1]["number"]}</a>')
        if i + 1 < len(entries):
            links.append(f'<a href="{entries[i + 1]["name"]}.html">{entries[i + 1]["number"]} →</a>')
        colab = COLAB.format(name=entry["path"].name)
        links.append(f'<a href="{colab}">open in Colab</a>')
        deck = slides / f"{entry['name']}.slides.html"
        if deck.is_file():
            links.append(f'<a href="{os.path.relpath(deck, out)}">slides</a>')
        bar = (f'<nav class="course-bar"><strong>{html.escape(COURSE)}</strong>{"".join(links)}'
               f'<span class="time">executed in {_format_seconds(meta["seconds"])} (toy profile, {meta["executed_at"][:10]}); '
               f'colab: {html.escape(entry["colab"])}</span></nav>')
        target = out / f"{entry['name']}.html"
        _write(target, _inject(page, head=SITE_STYLE, body_start=bar))
        built.append(target)
        deck_link = f'<a href="{os.path.relpath(deck, out)}">slides</a>' if deck.is_file() else ""
        rows.append(f'<tr><td class="n">{entry["number"]}</td><td><a href="{entry["name"]}.html">{html.escape(title)}</a></td>'
                    f'<td>{_markdown_inline(entry["teaches"])}</td>'
                    f'<td class="time">toy: {_format_seconds(meta["seconds"])}<br>colab: {html.escape(entry["colab"])}</td>'
                    f'<td class="links"><a href="{colab}">open in Colab</a>{deck_link}</td></tr>')
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: '{title}'")
    from datetime import date

    index = out / "index.html"
    _write(index, INDEX.format(course=html.escape(COURSE), rows="\n".join(rows), built=date.today().isoformat(), repo=REPO_URL))
    print(f"{index.relative_to(ROOT) if index.is_relative_to(ROOT) else index}: the index, {len(built)} chapters")
    return index


def _write(target: Path, text: str) -> None:
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)  # a page is there whole or not at all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["slides", "site"])
    parser.add_argument("notebooks", nargs="*", type=Path, help="slides: which notebooks (default: all in the README)")
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/slides or outputs/site")
    args = parser.parse_args(argv)
    try:
        if args.what == "slides":
            paths = [p.resolve() for p in args.notebooks] or [entry["path"] for entry in chapters()]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise SiteError(f"no such notebook: {', '.join(missing)}")
            build_slides(paths, args.out or ROOT / "outputs" / "slides")
        else:
            if args.notebooks:
                raise SiteError("the site has every chapter of the README; it takes no notebook arguments")
            build_site(args.out or ROOT / "outputs" / "site", ROOT / "outputs" / "slides")
    except SiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
