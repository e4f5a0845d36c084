"""The three places dependencies are written agree, and torch is never pinned where Colab reads."""

import re
import tomllib
from pathlib import Path

import yaml

import nlp_course

ROOT = Path(__file__).resolve().parent.parent


def requirement_lines(text):
    return {line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()}


def test_requirements_environment_and_pyproject_agree():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = set(pyproject["project"]["dependencies"]) | set(pyproject["project"]["optional-dependencies"]["dev"])
    requirements = requirement_lines((ROOT / "requirements.txt").read_text())
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_pip = set(pip_section) - {"-e ."}
    assert requirements == declared
    assert conda_pip == declared


def test_torch_is_not_a_dependency_colab_would_reinstall():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for spec in list(pyproject["project"]["dependencies"]) + sorted(requirement_lines((ROOT / "requirements.txt").read_text())):
        assert not re.match(r"^torch\b", spec), spec


def test_repository_url_is_written_once_and_agreed():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["urls"]["Homepage"] == nlp_course.REPO_URL
    assert nlp_course.REPO_URL in (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command():
    """Run .ci/run's own extraction on the README and compare with the command a reader sees."""
    import subprocess

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after_marker = readme.split("<!-- test-command -->", 1)[1]
    shown = after_marker.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    awk_program = re.search(r"test_command=\$\(awk '([^']+)' README.md\)", ci).group(1)
    extracted = subprocess.run(["awk", awk_program, "README.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert extracted.stdout.strip() == shown == "ruff check . && python -m pytest -n 2"
    assert 'bash -euo pipefail -c "$test_command"' in ci


def test_the_tests_also_run_without_xdist():
    """conftest.py's scheduler hook belongs to pytest-xdist: pytest without it must still start."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "--collect-only", "-q", "tests/test_packaging.py"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_the_tests_also_run_without_xdist" in run.stdout
