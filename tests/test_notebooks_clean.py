"""The notebooks as files: clean in git, one skeleton, one set-up cell pointing at one repository."""

import json
import re
from pathlib import Path

import pytest

import nlp_course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARK = "NBVAL_CHECK_OUTPUT"


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell):
    return "".join(cell["source"])


def test_there_are_notebooks():
    # the list nbval and the tests below run over: a deleted or renamed notebook must not drop out silently
    assert [p.name for p in NOTEBOOKS] == [
        "01_nlp_concepts.ipynb",
        "02_pretraining_objectives.ipynb",
        "03_tokenizers.ipynb",
        "04_pretraining_roberta.ipynb",
        "05_pretraining_electra.ipynb",
        "06_pretraining_gpt2_code.ipynb",
        "07_fine_tuning_classification.ipynb",
        "08_fine_tuning_generation.ipynb",
        "09_evaluation.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_except_those_nbval_checks(path):
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
    assert "widgets" not in metadata, f"widget state stored: python tools/notebooks.py clean notebooks/{path.name}"
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] != "code":
            continue
        if MARK in source(cell):
            assert cell["outputs"] and cell["execution_count"], (
                f"cell {i} is checked by nbval but has no stored output: python tools/notebooks.py run {path.name}"
            )
        else:
            assert not cell["outputs"] and cell["execution_count"] is None, (
                f"{path.name} cell {i} carries outputs: python tools/notebooks.py clean notebooks/{path.name}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_skeleton(path):
    nb = cells(path)
    first = source(nb[0])
    assert nb[0]["cell_type"] == "code", "the set-up cell comes first"
    assert f'REPO_URL = "{nlp_course.REPO_URL}"' in first, "the set-up cell must use nlp_course.REPO_URL"
    assert "nlp_course.setup_notebook(" in first
    installs = [line for line in first.splitlines() if "pip" in line and "install" in line]
    assert installs and not any("torch" in line or "--force-reinstall" in line for line in installs), installs
    assert source(nb[1]).startswith("# ") and "**By the end you will be able to**" in source(nb[1])
    assert nb[2]["cell_type"] == "code" and source(nb[2]).startswith("# Knobs")
    markdown = "\n".join(source(c) for c in nb if c["cell_type"] == "markdown")
    numbers = [int(n) for n in re.findall(r"^## (\d+)\. ", markdown, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 3, numbers
    assert "\n## Recap" in markdown and "\n## Exercises" in markdown


def test_every_notebook_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert path.stem in readme, path.stem
