import pytest

from nlp_course import bench


class ScriptedClock:
    """Stands in for ``bench._clock``: the n-th timing (a start and a stop reading) lasts the n-th duration given.

    The durations are multiples of 1/16 s, so that every reading and every difference is exact in floating point.
    """

    def __init__(self, *durations: float):
        self.durations, self.readings, self.now = list(durations), 0, 1000.0

    def __call__(self) -> float:
        if self.readings % 2:  # a stop reading
            self.now += self.durations.pop(0)
        self.readings += 1
        return self.now

    def used_up(self) -> bool:
        return not self.durations and self.readings % 2 == 0


SAMPLE_MB = 0.05  # a few standard-library files; the course's Spanish corpus (0.2 MB) is then used once, unrepeated
KINDS_AND_CORPORA = [(k, c) for c in ("spanish prose", "python code") for k in ("bpe", "wordpiece", "unigram")]
TRAIN = [0.5, 0.25, 2.0, 1.0, 0.125, 4.0]  # one training of each kind on each corpus, in that order
BATCHED, ONE_BY_ONE = [0.5, 0.25, 1.0], [1.5, 2.0, 0.75]
PYTHON_TOKENIZE, RUST_PRE, RUST_FULL = [0.5, 0.625, 0.375], [0.25, 0.125, 0.5], [0.25, 0.1875, 0.3125]
# the overhead rounds alternate: direct then ours, ours then direct, direct then ours
OVERHEAD = [2.0, 3.0, 2.5, 4.0, 1.0, 1.125]  # ours/direct - 1: +0.5, -0.375, +0.125


def test_tokenizer_benchmark_derives_its_numbers_from_the_timings(monkeypatch):
    from nlp_course.data import load_corpus

    clock = ScriptedClock(*TRAIN, *BATCHED, *ONE_BY_ONE, *PYTHON_TOKENIZE, *RUST_PRE, *RUST_FULL, *OVERHEAD)
    monkeypatch.setattr(bench, "_clock", clock)
    results = bench.bench_tokenizers(megabytes=SAMPLE_MB, repeats=3, vocab_size=1_000, log=lambda *a: None)
    assert clock.used_up(), "one timing per training, 3 repeats of each encoding, 3 rounds of 2 for the overhead"
    code = bench._size(bench._code_sample(SAMPLE_MB))
    prose = bench._size(list(load_corpus("corpus_es")["text"]))
    sizes = {"spanish prose": prose, "python code": code}
    assert results.pop("machine").keys() == {"python", "cpus", "platform"}
    assert results == {
        "corpora_mb": {"spanish prose": round(prose, 3), "python code": round(code, 3)},
        "vocab_size": 1_000,
        "train_mb_per_s": {f"{k} / {c}": round(sizes[c] / t, 3) for (k, c), t in zip(KINDS_AND_CORPORA, TRAIN, strict=True)},
        # the best of the repeats
        "encode_mb_per_s": {"batched": round(code / 0.25, 2), "one by one": round(code / 0.75, 2)},
        "batched_speedup": 3.0,  # 0.75 / 0.25
        "pretokenize_mb_per_s": {"python tokenize module": round(code / 0.375, 2),
                                 "rust pre-tokenizer only": round(code / 0.125, 2),
                                 "rust full encoding": round(code / 0.1875, 2)},
        "rust_full_vs_python_tokenize": 2.0,  # 0.375 / 0.1875
        # medians of ours 3.0, 2.5, 1.125 and of direct 2.0, 4.0, 1.0; median of the paired ratios, not of the
        # medians (+25 %) nor their mean (+8.3 %)
        "train_tokenizer_seconds": 2.5, "direct_tokenizers_seconds": 2.0,
        "train_tokenizer_overhead": 0.125, "train_tokenizer_overhead_range": [-0.375, 0.5],
    }
    assert code >= SAMPLE_MB and prose > SAMPLE_MB


HAND_RESULTS = {
    "train_mb_per_s": {"bpe / python code": 5.04, "unigram / python code": 0.23},
    "encode_mb_per_s": {"batched": 4.1, "one by one": 2.4}, "batched_speedup": 1.71,
    "pretokenize_mb_per_s": {"python tokenize module": 4.7, "rust pre-tokenizer only": 1.9, "rust full encoding": 4.2},
    "rust_full_vs_python_tokenize": 0.89, "train_tokenizer_seconds": 0.99, "direct_tokenizers_seconds": 0.98,
    "train_tokenizer_overhead": -0.001, "train_tokenizer_overhead_range": [-0.21, 0.12],
}


def test_report_prints_the_numbers_and_the_verdict():
    text = bench.format_tokenizer_results(HAND_RESULTS)
    for line in ("  bpe / python code                5.04", "  unigram / python code            0.23",
                 "  batched                          4.10", "  one by one                       2.40",
                 "batched is 1.71x faster", "  python tokenize module           4.70",
                 "  rust pre-tokenizer only          1.90", "  rust full encoding               4.20",
                 "0.89x the speed", "0.99 s vs 0.98 s", "-0.1% (within the 10 % goal)", "from -21.0% to +12.0%"):
        assert line in text, line
    over = bench.format_tokenizer_results({**HAND_RESULTS, "train_tokenizer_overhead": 0.2})
    assert "+20.0% (OVER the 10 % goal)" in over and "within" not in over
    at_the_goal = bench.format_tokenizer_results({**HAND_RESULTS, "train_tokenizer_overhead": 0.1})
    assert "+10.0% (OVER the 10 % goal)" in at_the_goal  # the goal is under 10 %


def test_direct_and_wrapped_training_learn_the_same_vocabulary():
    from nlp_course.code_corpus import iter_python_files
    from nlp_course.tokenization import train_tokenizer

    code = [text for _, text in iter_python_files()][:40]
    direct = bench._direct_bpe(code, 600)
    ours = train_tokenizer(code, "bpe", 600, family="gpt2")
    assert direct.get_vocab() == ours.get_vocab()


def test_bad_arguments_exit_with_a_message(capsys):
    with pytest.raises(SystemExit):
        bench.main(["tokenizers", "--megabytes", "0"])
    assert "--megabytes must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["nothing"])


def test_packing_benchmark_measures_both_ways_on_the_same_tokens(monkeypatch):
    # two rounds, the second in the other order: constant length 0.5 s, map 0.25 s, then map 0.375 s, constant 0.125 s
    clock = ScriptedClock(0.5, 0.25, 0.375, 0.125)
    monkeypatch.setattr(bench, "_clock", clock)
    r = bench.bench_packing(megabytes=SAMPLE_MB, seq_length=128, repeats=2, vocab_size=1_000, log=lambda *a: None)
    assert clock.used_up()
    assert r["megabytes"] == round(bench._size(bench._code_sample(SAMPLE_MB)), 3) and r["seq_length"] == 128
    # both pack the same token stream into whole sequences, losing under one sequence per buffer or batch of files
    out = r["tokens_out"]
    assert set(out) == {"constant_length", "datasets_map"}
    for name, n in out.items():
        assert n % 128 == 0 and 0 <= r["tokens"] - n < 128 * 2, name
        assert r["tokens_lost"][name] == round(1 - n / r["tokens"], 5), name
    assert r["seconds"] == {"constant_length": 0.125, "datasets_map": 0.25}  # the best of each
    assert r["tokens_per_second"] == {"constant_length": round(out["constant_length"] / 0.125),
                                      "datasets_map": round(out["datasets_map"] / 0.25)}
    assert r["constant_length_vs_map"] == round((out["constant_length"] / 0.125) / (out["datasets_map"] / 0.25), 3)
    text = bench.format_packing_results(r)
    assert f"ConstantLengthDataset        {r['tokens_per_second']['constant_length']:>12,} tokens/s" in text
    assert f"datasets.map + group_texts   {r['tokens_per_second']['datasets_map']:>12,} tokens/s" in text
    assert f"runs at {r['constant_length_vs_map']}x the throughput" in text
    with pytest.raises(SystemExit):
        bench.main(["packing", "--seq-length", "1"])
