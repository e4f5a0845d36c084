"""Slides and site: the rules that cut a notebook into slides, and the README's two commands, run and opened in
headless Chromium.

The browser checks run last in a test run (conftest.py), after nbval has executed the notebooks and left the
executed copies that the commands reuse. Without Chromium and chromedriver they are skipped, except in CI
(``CI`` set), where they must run: ``apt-get install chromium chromium-driver`` on Debian.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from tools import course_site
from tools.notebooks import source_digest, write_executed

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "outputs" / "screenshots"


# ---------------------------------------------------------------------------------------- slide rules, no browser
def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _types(nb):
    return [(c.cell_type, c.metadata.get("slideshow", {}).get("slide_type")) for c in nb.cells]


def test_slides_skip_set_up_and_imports_and_start_a_slide_per_section():
    code = nbformat.v4.new_code_cell
    md = nbformat.v4.new_markdown_cell
    nb = _notebook(code("# Set-up: run this cell first\nimport nlp_course"), md("# 09 · A title\n\nObjectives."),
                   code("# Knobs: sizes\nSTEPS = 3"), code("import math\nfrom pathlib import Path"),
                   md("Some prose.\n\n## 1. First section\n\nIts text."), code("x = 1\nprint(x)"),
                   md("### A subsection"), code("y = 2"))
    nb.cells[5].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    slides = course_site.to_slides(nb)
    assert _types(slides) == [
        ("code", "skip"), ("markdown", "slide"), ("code", "skip"), ("code", "skip"),
        ("markdown", "-"), ("markdown", "slide"), ("code", "-"), ("markdown", "-"), ("code", "-")]
    assert slides.cells[5].source.startswith("## 1. First section"), "a heading inside a cell starts its own slide"
    assert nb.cells[0].metadata == {}, "the notebook itself is left alone"


def test_long_prose_goes_to_the_notes_and_long_cells_to_sub_slides():
    paragraph = "A sentence of prose that a projector shows on one line or a little more, " * 2
    long_prose = "## 2. Long\n\n" + "\n\n".join([paragraph] * 12)
    cell = nbformat.v4.new_code_cell("\n".join(f"line_{i} = {i}" for i in range(12)))
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="".join(f"{i}\n" for i in range(30))),
                    nbformat.v4.new_output("stream", name="stderr", text="a warning\n")]
    slides = course_site.to_slides(_notebook(nbformat.v4.new_markdown_cell(long_prose), cell))
    assert _types(slides) == [("markdown", "slide"), ("markdown", "notes"), ("code", "subslide"), ("code", "subslide")]
    shown, notes = slides.cells[0].source, slides.cells[1].source
    assert "presenter notes" in shown and shown.count(paragraph.strip()) + notes.count(paragraph.strip()) == 12
    assert slides.cells[2].outputs == [] and course_site.OUTPUT_ONLY in slides.cells[3].metadata["tags"]
    printed = slides.cells[3].outputs
    assert len(printed) == 1, "stderr is not shown on slides"
    assert printed[0].text.splitlines()[: course_site.OUTPUT_LINES] == [str(i) for i in range(course_site.OUTPUT_LINES)]
    assert printed[0].text.splitlines()[-1].startswith(f"… {30 - course_site.OUTPUT_LINES} more lines")


def test_frozen_progress_bars_are_dropped_and_the_rest_kept():
    cell = nbformat.v4.new_code_cell("trainer.train()")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": "<progress value='1' max='3'></progress> [1/3 : < :]",
                                                      "text/plain": "<IPython.core.display.HTML object>"}),
        nbformat.v4.new_output("display_data", data={course_site.WIDGET: {"model_id": "x"}, "text/plain": "  0%|  | 0/52"}),
        nbformat.v4.new_output("stream", name="stdout", text="after 120 steps: eval loss 6.35\n"),
        nbformat.v4.new_output("display_data", data={"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "t"}),
    ]
    nb = _notebook(cell)
    course_site._without_widgets_and_noise(nb, keep_stderr=True)
    assert [o.get("text", o.get("data", {}).get("text/plain")) for o in nb.cells[0].outputs] == [
        "after 120 steps: eval loss 6.35\n", "t"]


def test_formulas_become_mathml_and_code_spans_stay():
    nb = _notebook(nbformat.v4.new_markdown_cell(
        "Perplexity $\\text{PPL} = \\exp(-\\frac{1}{N}\\sum_i \\log p_i)$, and in display\n\n$$P(w \\mid c) = \\lambda_1 P_1$$\n\n"
        "while `echo $HOME $PATH` is code."))
    course_site._math_to_mathml(nb)
    text = nb.cells[0].source
    assert text.count("<math") == 2 and 'display="block"' in text and "<mfrac>" in text and "<msub>" in text
    assert "$" not in text.replace("`echo $HOME $PATH`", ""), "every formula converted"
    assert "`echo $HOME $PATH`" in text, "code spans untouched"


def test_an_executed_copy_is_reused_only_for_the_notebook_as_it_is(tmp_path, monkeypatch):
    notebook = tmp_path / "01_x.ipynb"
    nb = _notebook(nbformat.v4.new_markdown_cell("# 01 · X"), nbformat.v4.new_code_cell("print(1)"))
    nbformat.write(nb, notebook)
    monkeypatch.setattr(course_site, "EXECUTED", tmp_path / "executed")
    outputs = {id(nb.cells[1]): ([nbformat.v4.new_output("stream", name="stdout", text="1\n")], 0.5)}
    write_executed(notebook, nb, outputs, executed_by="test", out=tmp_path / "executed")
    executions = []
    monkeypatch.setattr(course_site, "execute", lambda path: executions.append(path) or (nbformat.read(path, as_version=4), 0.1))
    copy = course_site.executed(notebook)
    assert executions == [] and copy.cells[1].outputs[0].text == "1\n" and copy.cells[1].metadata["nlp_course"]["seconds"] == 0.5
    nb.cells[1].source = "print(2)"  # the notebook changes: its copy is stale
    nbformat.write(nb, notebook)
    course_site.executed(notebook)
    assert executions == [notebook]
    assert nbformat.read(tmp_path / "executed" / notebook.name, as_version=4).metadata["nlp_course"]["source_sha256"] == source_digest(notebook)


def test_a_tampered_asset_is_refused_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    url, _ = course_site.NPM_PACKAGES["requirejs"]
    cached = tmp_path / "nlp_course" / "site-assets" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the package")
    with pytest.raises(course_site.SiteError, match="does not match its pinned SHA-512"):
        course_site.npm_package("requirejs")
    assert not cached.exists()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(b"not the package").digest()).decode()
    assert digest != course_site.NPM_PACKAGES["requirejs"][1]


def test_the_index_follows_the_readme():
    rows = course_site.chapters()
    assert [r["number"] for r in rows] == [f"{i:02d}" for i in range(1, len(rows) + 1)]
    assert [r["path"].name for r in rows] == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


# ---------------------------------------------------------------------------------------- the commands, in a browser
def readme_command(marker: str) -> str:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- {marker} -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[fence + 1:end])


@pytest.fixture(scope="module")
def built():
    """Run the README's slides and site commands, as a reader would."""
    for marker in ("slides-command", "site-command"):
        command = readme_command(marker)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return [(entry, course_site.title_of(nbformat.read(entry["path"], as_version=4))) for entry in course_site.chapters()]


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = "the browser checks need Chromium and chromedriver: apt-get install chromium chromium-driver (Debian)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,860"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver), options=options)
    yield browser
    browser.quit()


def _wait(browser, script: str, what: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while not browser.execute_script(script):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


IMAGES = "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"


def _errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _open(browser, page: Path) -> None:
    assert page.is_file(), f"{page} was not built"
    browser.get(page.as_uri())
    _wait(browser, "return document.readyState === 'complete'", f"{page.name} to load")


@pytest.mark.site
def test_every_site_page_loads_with_its_title_and_images(built, browser):
    site = ROOT / "outputs" / "site"
    _open(browser, site / "index.html")
    assert _errors(browser) == []
    assert browser.find_element("tag name", "h1").text == course_site.COURSE
    links = [a.get_attribute("href").rsplit("/", 1)[1] for a in browser.find_elements("css selector", "tbody td:nth-child(2) a")]
    assert links == [f"{entry['name']}.html" for entry, _ in built], "the index lists the chapters in the README's order"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "site_index.png"))
    images = 0
    for entry, title in built:
        page = (site / f"{entry['name']}.html").read_text(encoding="utf-8")
        assert not re.search(r"<(?:script|link)[^>]+(?:src|href)=\"https?://", page), f"{entry['name']}: loads from the network"
        _open(browser, site / f"{entry['name']}.html")
        assert _errors(browser) == [], entry["name"]
        assert browser.find_element("tag name", "h1").text.rstrip("¶").strip() == title
        assert browser.execute_script(IMAGES) == [], f"{entry['name']}: images that did not load"
        images += browser.execute_script("return document.images.length")
        bar = browser.find_element("css selector", "nav.course-bar").text
        assert "open in Colab" in bar and "executed in" in bar
        if entry["number"] == "04":
            browser.save_screenshot(str(SHOTS / f"site_{entry['name']}.png"))
    assert images >= len(built), "the chapters' plots are on their pages"


@pytest.mark.site
def test_first_middle_and_last_slide_of_every_deck(built, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for entry, title in built:
        deck = ROOT / "outputs" / "slides" / f"{entry['name']}.slides.html"
        text = deck.read_text(encoding="utf-8")
        assert "Set-up: run this cell first" not in text, "the set-up cell is skipped"
        assert not re.search(r"<(?:script|link)[^>]+(?:src|href)=\"https?://", text), "nothing loaded from the network"
        _open(browser, deck)
        _wait(browser, "return window.Reveal !== undefined && Reveal.isReady()", f"reveal.js in {deck.name}")
        slides = browser.execute_script("return Reveal.getSlides().map(s => [Reveal.getIndices(s).h, Reveal.getIndices(s).v || 0])")
        assert len(slides) >= 5, f"{deck.name}: {len(slides)} slides"
        for which, (h, v) in zip(("first", "middle", "last"), (slides[0], slides[len(slides) // 2], slides[-1]), strict=True):
            browser.execute_script(f"Reveal.slide({h}, {v})")
            _wait(browser, f"var i = Reveal.getIndices(); return i.h === {h} && (i.v || 0) === {v}", f"slide {h}/{v}")
            assert _errors(browser) == [], f"{deck.name}, {which} slide"
            footer = browser.find_element("css selector", ".course-footer")
            assert footer.is_displayed() and title in footer.text, f"{deck.name}, {which} slide: no title"
            assert browser.execute_script(IMAGES) == [], f"{deck.name}, {which} slide: images that did not load"
            if which == "first":
                assert browser.execute_script("return Reveal.getCurrentSlide().querySelector('h1').textContent").rstrip("¶").strip() == title
            if entry["number"] == "04":
                browser.save_screenshot(str(SHOTS / f"slides_{entry['name']}_{which}.png"))
    notes = sum((ROOT / "outputs" / "slides" / f"{e['name']}.slides.html").read_text(encoding="utf-8").count('<aside class="notes">')
                for e, _ in built)
    assert notes > 0, "long prose goes to the presenter notes"
