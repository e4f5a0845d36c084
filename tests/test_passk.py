"""pass@k: the estimator against brute force, the course's problems in the sandbox, the command end to end.

Bad input must be refused before any sample runs: those tests replace the sandbox with one that fails
the test if it is ever called.
"""

import gzip
import itertools
import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from nlp_course import passk
from nlp_course.passk import (
    PassKError,
    biased_pass_at_k,
    estimate_pass_at_k,
    load_problems,
    load_samples,
    mean_pass_at_k,
    pass_at_k,
    results_path,
    run_samples,
)

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "data" / "code_problems.jsonl"
LOOP = "    while True:\n        pass\n"


@pytest.fixture(scope="module")
def problems():
    return load_problems(PROBLEMS)


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def sample(problems, task_id, kind):
    completion = LOOP if kind == "loop" else problems[task_id][f"{kind}_solution"]
    return {"task_id": task_id, "completion": completion}


# ---------------------------------------------------------------- the estimator
def brute_force(n: int, c: int, k: int) -> Fraction:
    """The share of the k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in subset) for subset in subsets), len(subsets))


def test_pass_at_k_equals_brute_force_for_every_small_case():
    cases = [(n, c, k) for n in range(1, 9) for c in range(n + 1) for k in range(1, n + 1)]
    assert len(cases) == 240
    for n, c, k in cases:
        assert pass_at_k(n, c, k) == pytest.approx(float(brute_force(n, c, k)), abs=1e-12), (n, c, k)
    assert pass_at_k(5, 3, 3) == 1.0 and pass_at_k(5, 0, 3) == 0.0 and pass_at_k(10, 3, 1) == pytest.approx(0.3)


def test_pass_at_k_is_stable_where_the_binomials_are_huge():
    # C(10000, 100) has 242 digits; the product form never forms it
    n, c, k = 10_000, 5_000, 100
    log_ratio = sum(math.log(n - c - i) - math.log(n - i) for i in range(k))
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.exp(log_ratio), abs=1e-12)
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5) and pass_at_k(200, 0, 100) == 0.0
    assert 0 < pass_at_k(1_000_000, 1, 1) < 1e-5


def test_the_biased_formula_never_overestimates_and_is_off_on_average():
    # with 1 correct sample of 10, half of the 5-subsets hold it; k draws with replacement say 41 %
    assert pass_at_k(10, 1, 5) == pytest.approx(0.5)
    assert biased_pass_at_k(10, 1, 5) == pytest.approx(1 - 0.9**5) == pytest.approx(0.40951)
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                unbiased, biased = pass_at_k(n, c, k), biased_pass_at_k(n, c, k)
                if k == 1 or c in (0, n):
                    assert biased == pytest.approx(unbiased, abs=1e-12), (n, c, k)
                else:
                    assert biased < unbiased, (n, c, k)
    # over the binomial draws of c, only the unbiased estimator averages to the true pass@k
    n, k, p = 10, 5, 0.3
    weights = [math.comb(n, c) * p**c * (1 - p) ** (n - c) for c in range(n + 1)]
    true = 1 - (1 - p) ** k
    assert sum(w * pass_at_k(n, c, k) for c, w in enumerate(weights)) == pytest.approx(true, abs=1e-12)
    assert sum(w * biased_pass_at_k(n, c, k) for c, w in enumerate(weights)) < true - 0.05


@pytest.mark.parametrize(("n", "c", "k", "message"), [
    (5, 2, 6, "k (6) is more than n (5 samples)"),
    (5, 6, 1, "c (6 correct samples) cannot be more than n (5 samples)"),
    (0, 0, 1, "n (samples) must be at least 1"),
    (5, -1, 1, "c (correct samples) must be at least 0"),
    (5, 2, 0, "k must be at least 1"),
    (5, 2.0, 1, "c (correct samples) must be a whole number, got 2.0"),
    (True, 1, 1, "n (samples) must be a whole number"),
])
def test_bad_numbers_are_clear_value_errors(n, c, k, message):
    for estimator in (pass_at_k, biased_pass_at_k):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
            estimator(n, c, k)
        assert isinstance(caught.value, PassKError)


def test_the_helper_over_problems():
    assert list(estimate_pass_at_k(4, [0, 1, 4], 2)) == pytest.approx([0.0, 0.5, 1.0])
    assert mean_pass_at_k(4, [0, 1, 4], 2) == pytest.approx(0.5)
    assert mean_pass_at_k([2, 4], [1, 1], 1) == pytest.approx((0.5 + 0.25) / 2)
    with pytest.raises(PassKError, match="one per problem"):
        estimate_pass_at_k([2, 4, 6], [1, 1], 1)
    with pytest.raises(PassKError, match="at least one"):
        mean_pass_at_k(4, [], 1)


# ---------------------------------------------------------------- the course's problems
def test_the_problems_file_is_human_eval_shaped(problems):
    assert list(problems) == [f"course/{i}" for i in range(20)]
    entry_points = set()
    for task_id, problem in problems.items():
        assert problem["prompt"].startswith(f"def {problem['entry_point']}(") and '"""' in problem["prompt"], task_id
        assert problem["test"].startswith("def check(candidate):") and problem["test"].count("assert") >= 4, task_id
        assert problem["canonical_solution"].startswith("    ") and problem["broken_solution"].startswith("    ")
        assert problem["canonical_solution"] != problem["broken_solution"]
        entry_points.add(problem["entry_point"])
    assert len(entry_points) == 20


def test_every_canonical_solution_passes_and_every_broken_one_fails(problems):
    samples = [sample(problems, task_id, kind) for task_id in problems for kind in ("canonical", "broken")]
    results = run_samples(problems, samples, timeout=10, workers=2, progress=False)
    assert [r["task_id"] for r in results] == [s["task_id"] for s in samples]  # in the samples' order
    passed = {(r["task_id"], r["completion"] == problems[r["task_id"]]["canonical_solution"]): r for r in results}
    assert [task for (task, canonical), r in passed.items() if canonical and not r["passed"]] == []
    assert [task for (task, canonical), r in passed.items() if not canonical and r["passed"]] == []
    assert all(r["status"] == "passed" for r in results if r["passed"])
    assert all(r["status"] != "passed" for r in results if not r["passed"])


# ---------------------------------------------------------------- the command
def test_the_command_end_to_end(problems, tmp_path):
    # course/0: 3 of 3 pass; course/1: 1 of 3; course/2: 0 of 3 (two broken, one endless loop)
    kinds = {"course/0": ["canonical"] * 3, "course/1": ["broken", "canonical", "broken"],
             "course/2": ["broken", "loop", "broken"]}
    samples = [sample(problems, task_id, kind) for task_id, ks in kinds.items() for kind in ks]
    path = write_jsonl(tmp_path / "samples.jsonl", samples)
    done = subprocess.run([sys.executable, "-m", "nlp_course.passk", str(PROBLEMS), str(path), "--k", "1,2",
                           "--timeout", "2", "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # pass@1 = mean of c/n = (1 + 1/3 + 0) / 3; pass@2 = (1 + (1 - C(2,2)/C(3,2)) + 0) / 3 = (1 + 2/3) / 3
    assert summary == pytest.approx({"pass@1": 4 / 9, "pass@2": 5 / 9}, abs=1e-12)
    assert "running samples" in done.stderr and "9 samples of 3 problems" in done.stdout
    out = tmp_path / "samples.jsonl_results.jsonl"
    assert results_path(path) == out and sorted(p.name for p in tmp_path.iterdir()) == ["samples.jsonl", out.name]
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["task_id"], r["completion"]) for r in results] == [(s["task_id"], s["completion"]) for s in samples]
    assert [r["passed"] for r in results] == [True] * 3 + [False, True, False] + [False] * 3
    assert results[7]["status"] == "timed out" and results[4]["status"] == "passed"
    assert all(isinstance(r["status"], str) for r in results)


def test_without_k_the_k_too_large_are_skipped_and_gz_is_read(problems, tmp_path, capsys):
    raw = "".join(json.dumps(sample(problems, "course/3", kind)) + "\n" for kind in ("canonical", "broken"))
    path = tmp_path / "samples.jsonl.gz"
    path.write_bytes(gzip.compress(raw.encode("utf-8")))
    assert passk.main([str(PROBLEMS), str(path), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1]) == {"pass@1": 0.5}
    assert "pass@10, pass@100 skipped" in captured.err and "cover 1 of the 20 problems" in captured.err
    assert len((tmp_path / "samples.jsonl.gz_results.jsonl").read_text().splitlines()) == 2


# ---------------------------------------------------------------- bad input: refused before any sample runs
@pytest.fixture
def no_sandbox(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a sample ran although the input is bad")
    monkeypatch.setattr(passk, "execute", refuse)


def good(problems):
    return [sample(problems, "course/0", "canonical"), sample(problems, "course/0", "broken")]


BAD_SAMPLES = {
    "missing field": (lambda rows: [rows[0], {"task_id": "course/0", "code": "x"}],
                      ["samples.jsonl, line 2", "no 'completion' field", "'task_id', 'completion'"]),
    "unknown task id": (lambda rows: [rows[0], {"task_id": "HumanEval/0", "completion": "x"}],
                        ["samples.jsonl, line 2", "'HumanEval/0' is not one of the problems", "course/0"]),
    "not a string": (lambda rows: [{"task_id": "course/0", "completion": 3}],
                     ["line 1", "'completion' must be a string, got int"]),
    "invalid JSON": (lambda rows: [json.dumps(rows[0]), '{"task_id": "course/0", "completion": }'],
                     ["samples.jsonl, line 2: not valid JSON", "one JSON object"]),
    "not an object": (lambda rows: [json.dumps(rows[0]), "[1, 2]"], ["line 2", "a JSON object"]),
    "empty file": (lambda rows: ["", "  "], ["samples.jsonl is empty"]),
    "k too large": (lambda rows: rows, ["k = 3, 5 is too large", "course/0 has 2 samples", "at most 2"]),
}


@pytest.mark.parametrize("case", list(BAD_SAMPLES))
def test_bad_samples_are_refused_with_file_line_and_fix(case, problems, tmp_path, capsys, no_sandbox):
    make, expected = BAD_SAMPLES[case]
    rows = make(good(problems))
    path = tmp_path / "samples.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(SystemExit) as caught:
        passk.main([str(PROBLEMS), str(path), "--k", "1,3,5" if case == "k too large" else "1"])
    assert caught.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and all(part in errors[0] for part in expected), errors
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]  # no results file, no temporary file


@pytest.mark.parametrize(("args", "expected"), [
    (["--k", "1,x"], "--k '1,x': give whole numbers"),
    (["--k", "0"], "of 1 or more"),
    (["--timeout", "0"], "not a positive number of seconds"),
    (["--workers", "-2"], "not a whole number of 1 or more"),
])
def test_bad_options_are_refused(args, expected, problems, tmp_path, capsys, no_sandbox):
    path = write_jsonl(tmp_path / "samples.jsonl", good(problems))
    with pytest.raises(SystemExit) as caught:
        passk.main([str(PROBLEMS), str(path), *args])
    assert caught.value.code == 2 and expected in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]


def test_bad_problem_files_name_their_line(problems, tmp_path, no_sandbox):
    rows = list(problems.values())[:2]
    write_jsonl(tmp_path / "p.jsonl", [rows[0], {k: v for k, v in rows[1].items() if k != "test"}])
    with pytest.raises(PassKError, match=r"p.jsonl, line 2: no 'test' field"):
        load_problems(tmp_path / "p.jsonl")
    write_jsonl(tmp_path / "p.jsonl", [rows[0], rows[0]])
    with pytest.raises(PassKError, match="line 2: task_id 'course/0' occurs twice"):
        load_problems(tmp_path / "p.jsonl")
    (tmp_path / "p.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(PassKError, match="not a whole gzip file"):
        load_problems(tmp_path / "p.jsonl.gz")
    with pytest.raises(PassKError, match="no such file"):
        load_samples(tmp_path / "missing.jsonl", problems)


def test_under_python_m_a_bad_file_is_one_error_line(problems, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [{"task_id": "course/99", "completion": "    pass\n"}])
    done = subprocess.run([sys.executable, "-m", "nlp_course.passk", str(PROBLEMS), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: {path}, line 1: task_id 'course/99' is not one of the problems (course/0, course/1, course/2, ... "
        "course/19). Give the problems file these samples were generated for."]
    assert not results_path(path).exists()


def test_an_interrupted_run_writes_nothing(problems, tmp_path, monkeypatch, capsys):
    path = write_jsonl(tmp_path / "samples.jsonl", good(problems))
    results_path(path).write_text("an earlier run's results\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(passk, "execute", interrupted)
    with pytest.raises(SystemExit) as caught:
        passk.main([str(PROBLEMS), str(path), "--workers", "1"])
    assert caught.value.code == 130 and "no results were written" in capsys.readouterr().err
    assert results_path(path).read_text() == "an earlier run's results\n"
    assert sorted(os.listdir(tmp_path)) == ["samples.jsonl", "samples.jsonl_results.jsonl"]
