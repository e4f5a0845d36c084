import ast
import json
import os
import socket
import threading
from pathlib import Path

import datasets
import pandas as pd
import pytest

from nlp_course import code_corpus, data, runtime
from nlp_course import files as course_files
from nlp_course.data import DataSourceError, HubUnavailableError, load_corpus, load_labelled

DOCS = ["Primera frase.\nSegunda frase del mismo documento.", "Otro documento.\n¿Y una pregunta?", "Fin."]


# ---------------------------------------------------------------- the Hub, offline and online
def test_hub_unavailable_in_offline_mode(offline):
    assert runtime.hub_available() is False


def test_hub_unavailable_when_nothing_answers(monkeypatch):
    with socket.socket() as s:  # a loopback port with no server behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert runtime.hub_available(timeout=1.0) is False


def test_hub_available_when_the_endpoint_answers(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepter = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
    accepter.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    try:
        assert runtime.hub_available(timeout=2.0) is True
    finally:
        accepter.join(timeout=2.0)
        server.close()


@pytest.mark.parametrize("loader", [load_corpus, load_labelled])
def test_hub_id_offline_fails_at_once_with_what_to_do(loader, offline, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("no Hub request may be sent offline"))
    with pytest.raises(HubUnavailableError) as err:
        loader("cornell-movie-review-data/rotten_tomatoes")
    message = str(err.value)
    assert "rotten_tomatoes" in message and "toy" in message and "local file" in message
    assert isinstance(err.value, ConnectionError)


def test_hub_id_online_goes_to_load_dataset_with_config_and_streaming(monkeypatch, tmp_path):
    calls = []
    local = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["  hola  ", "adiós"]})})
    monkeypatch.setattr(data, "hub_available", lambda timeout=2.0: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or local)
    ds = load_corpus("wikimedia/wikipedia", config="20231101.es", streaming=True)
    assert calls == [(("wikimedia/wikipedia", "20231101.es"), {"streaming": True})]
    assert ds["text"] == ["  hola  ", "adiós"]  # Hub text is passed through untouched


# ---------------------------------------------------------------- local files of each format
@pytest.fixture
def files(tmp_path):
    (tmp_path / "corpus.txt").write_text("\n\n".join(DOCS) + "\n", encoding="utf-8")
    frame = pd.DataFrame({"body": ["muy bueno", "malísimo", "me encantó", "no vuelvo"],
                          "sentiment": ["pos", "neg", "pos", "neg"]})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    frame.to_json(tmp_path / "reviews.jsonl", orient="records", lines=True, force_ascii=False)
    (tmp_path / "reviews.json").write_text(json.dumps(frame.to_dict(orient="records")), encoding="utf-8")
    frame.to_parquet(tmp_path / "reviews.parquet")
    return tmp_path


def test_txt_in_electra_format_gives_one_row_per_document(files):
    ds = load_corpus(files / "corpus.txt")
    assert ds["text"] == DOCS


def test_txt_line_by_line(files):
    ds = load_corpus(str(files / "corpus.txt"), sample_by="line")
    assert ds["text"] == [line for doc in DOCS for line in doc.split("\n")]


@pytest.mark.parametrize("name", ["reviews.csv", "reviews.jsonl", "reviews.json", "reviews.parquet"])
def test_tabular_formats_load_the_same_rows(files, name):
    corpus = load_corpus(files / name, text_column="body")
    assert corpus["text"] == ["muy bueno", "malísimo", "me encantó", "no vuelvo"]
    labelled = load_labelled(files / name, text_column="body", label_column="sentiment")
    train = labelled["train"]
    assert train.features["label"].names == ["neg", "pos"]
    assert train["label"] == [1, 0, 1, 0] and train["text"][0] == "muy bueno"


def test_integer_labels_numbered_from_zero_are_kept(tmp_path):
    labels = [11, 2, 0, 10, 1, 3, 4, 5, 6, 7, 8, 9]
    pd.DataFrame({"text": list("abcdefghijkl"), "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    train = load_labelled(tmp_path / "train.csv")["train"]
    assert train["label"] == labels and train.features["label"].names == [str(i) for i in range(12)]


def test_star_ratings_are_renumbered_with_their_values_as_names(tmp_path):
    pd.DataFrame({"text": list("abcd"), "stars": [5, 1, 3, 5]}).to_csv(tmp_path / "train.csv", index=False)
    train = load_labelled(tmp_path / "train.csv", label_column="stars")["train"]
    assert train["label"] == [2, 0, 1, 2] and train.features["label"].names == ["1", "3", "5"]


def test_a_label_has_the_same_id_in_every_split(tmp_path):
    pd.DataFrame({"text": list("abc"), "label": ["pos", "neg", "neu"]}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": list("de"), "label": ["pos", "pos"]}).to_csv(tmp_path / "test.csv", index=False)
    dd = load_labelled(tmp_path)
    assert dd["train"].features["label"].names == dd["test"].features["label"].names == ["neg", "neu", "pos"]
    assert dd["train"]["label"] == [2, 0, 1] and dd["test"]["label"] == [2, 2]


def test_labels_with_spaces_around_them_are_one_class(tmp_path):
    pd.DataFrame({"text": list("abcd"), "label": ["negative", "negative ", " positive", "positive"]}).to_csv(
        tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": ["e"], "label": ["positive  "]}).to_csv(tmp_path / "test.csv", index=False)
    dd = load_labelled(tmp_path)
    assert dd["train"].features["label"].names == ["negative", "positive"]
    assert dd["train"]["label"] == [0, 0, 1, 1] and dd["test"]["label"] == [1]
    pd.DataFrame({"text": list("ab"), "label": ["pos", "  "]}).to_csv(tmp_path / "blank.csv", index=False)
    with pytest.raises(DataSourceError, match="blank"):
        load_labelled(tmp_path / "blank.csv")


def test_hidden_folders_are_ignored_and_split_folders_understood(tmp_path):
    for folder, rows in (("train", ["a", "b"]), ("test", ["c"]), (".ipynb_checkpoints", ["stale"])):
        (tmp_path / folder).mkdir()
        pd.DataFrame({"text": rows, "label": ["x"] * len(rows)}).to_parquet(tmp_path / folder / "part-0.parquet")
    dd = load_labelled(tmp_path)
    assert dd["train"]["text"] == ["a", "b"] and dd["test"]["text"] == ["c"]


def test_split_names_match_whole_words_and_a_named_file_is_training_data(tmp_path):
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_csv(tmp_path / "testimonials.csv", index=False)
    pd.DataFrame({"text": ["b"], "label": ["x"]}).to_csv(tmp_path / "dev.csv", index=False)
    dd = load_labelled(tmp_path)
    assert dd["train"]["text"] == ["a"] and dd["validation"]["text"] == ["b"]
    assert list(load_labelled(tmp_path / "dev.csv")) == ["train"]


def test_folder_splits_come_from_file_names(tmp_path):
    for split, n in (("train", 4), ("validation", 2), ("test", 3)):
        pd.DataFrame({"text": [f"{split} {i}" for i in range(n)], "label": ["a", "b"] * (n // 2) + ["a"] * (n % 2)}).to_csv(
            tmp_path / f"{split}.csv", index=False
        )
    dd = load_labelled(tmp_path)
    assert {k: v.num_rows for k, v in dd.items()} == {"train": 4, "validation": 2, "test": 3}
    assert dd["test"]["text"][0] == "test 0"


def test_max_documents(files):
    assert load_corpus(files / "corpus.txt", max_documents=2)["text"] == DOCS[:2]


def test_streaming_local_file(files):
    ds = load_corpus(files / "corpus.txt", streaming=True)
    assert isinstance(ds, datasets.IterableDataset)
    assert [row["text"] for row in ds] == DOCS


# ---------------------------------------------------------------- bad input, with what to do
def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="course dataset"):
        load_labelled("./reviews/train.csv")


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    for name in ("empty.txt", "blank.txt"):
        with pytest.raises(DataSourceError, match="Empty file"):
            load_corpus(tmp_path / name)


def test_file_with_rows_but_no_text(tmp_path):
    (tmp_path / "header_only.csv").write_text("text,label\n")
    with pytest.raises(DataSourceError, match=r"header_only\.csv' as csv: .*A file holds no rows \(a header alone\?\)"):
        load_corpus(tmp_path / "header_only.csv")
    pd.DataFrame({"text": ["bien", None], "label": ["a", "b"]}).to_csv(tmp_path / "hole.csv", index=False)
    with pytest.raises(DataSourceError, match="1 row"):
        load_labelled(tmp_path / "hole.csv")
    pd.DataFrame({"text": [1, 2], "label": ["a", "b"]}).to_csv(tmp_path / "numbers.csv", index=False)
    with pytest.raises(DataSourceError, match="not strings"):
        load_corpus(tmp_path / "numbers.csv")


def test_mistyped_local_folders_are_not_sent_to_the_hub(offline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for source in ("my_reviews/", "data/my_corpus", "a/b/c", "C:/Users/me/corpus"):
        with pytest.raises(FileNotFoundError, match="No such file"):
            load_corpus(source)


def test_same_column_for_text_and_label(files):
    with pytest.raises(DataSourceError, match="two columns"):
        load_labelled(files / "reviews.csv", text_column="body", label_column="body")


def test_every_split_is_checked_for_the_column(tmp_path):
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": ["b"], "etiqueta": ["x"]}).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataSourceError, match=r"same columns|no column 'label'"):
        load_labelled(tmp_path)


def test_max_documents_must_be_positive(files):
    for bad in (0, -1, 2.5):
        with pytest.raises(DataSourceError, match="max_documents"):
            load_corpus(files / "corpus.txt", max_documents=bad)


def test_unsupported_format_lists_the_supported_ones(tmp_path):
    (tmp_path / "corpus.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataSourceError, match=r"Unsupported file format '.xlsx'.*\.parquet"):
        load_corpus(tmp_path / "corpus.xlsx")


def test_folder_without_data_files(tmp_path):
    (tmp_path / "notes.md").write_text("nothing here")
    with pytest.raises(DataSourceError, match="no file of a supported format"):
        load_corpus(tmp_path)


def test_folder_mixing_formats(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,b\n")
    (tmp_path / "test.jsonl").write_text('{"text": "a", "label": "b"}\n')
    with pytest.raises(DataSourceError, match="mixes formats"):
        load_labelled(tmp_path)


def test_labelled_file_without_the_named_column_lists_its_columns(files):
    with pytest.raises(DataSourceError, match=r"no column 'label'.*\['body', 'sentiment'\].*label_column="):
        load_labelled(files / "reviews.csv", text_column="body")
    with pytest.raises(DataSourceError, match=r"no column 'text'"):
        load_corpus(files / "reviews.parquet")


def test_wrong_kind_of_course_dataset():
    with pytest.raises(DataSourceError, match="labelled dataset, not a corpus"):
        load_corpus("reviews_es")


def test_empty_source_string():
    with pytest.raises(DataSourceError, match="non-empty"):
        load_corpus("  ")


def test_missing_split(files):
    with pytest.raises(DataSourceError, match=r"no split 'validation'.*\['train'\]"):
        load_corpus(files / "corpus.txt", split="validation")


def test_data_dir_from_environment_and_clear_error(monkeypatch, tmp_path):
    (tmp_path / "README.md").write_text("card")
    (tmp_path / "corpus_es.txt").write_text("Hola.\n")
    monkeypatch.setenv("NLP_COURSE_DATA", str(tmp_path))
    assert course_files.data_dir() == tmp_path
    monkeypatch.setenv("NLP_COURSE_DATA", str(tmp_path / "missing"))
    monkeypatch.setattr(course_files, "__file__", str(tmp_path / "elsewhere" / "pkg" / "files.py"))
    monkeypatch.chdir(tmp_path / "..")
    with pytest.raises(DataSourceError, match="NLP_COURSE_DATA"):
        course_files.data_dir()
    other = tmp_path / "elsewhere" / "data"  # another project's data/ with a README is not the course's
    other.mkdir(parents=True)
    (other / "README.md").write_text("not the course")
    monkeypatch.chdir(other.parent)
    with pytest.raises(DataSourceError, match="not found"):
        course_files.data_dir()


# ---------------------------------------------------------------- the course's own files
def test_spanish_corpus_is_big_enough_and_in_electra_format():
    path = data.course_file("corpus_es")
    raw = path.read_text(encoding="utf-8")
    assert path.stat().st_size >= 150_000
    assert raw.endswith("\n") and "\n\n\n" not in raw and not raw.startswith("\n")
    docs = load_corpus("corpus_es")
    assert docs.num_rows == raw.strip().count("\n\n") + 1 >= 40
    assert all(line == line.strip() for line in raw.splitlines())
    assert all(len(doc.splitlines()) >= 5 for doc in docs["text"])  # one sentence per line
    assert {"ñ", "¿", "¡", "á", "é", "í", "ó", "ú"} <= set(raw)


@pytest.mark.parametrize("name", ["reviews_es", "reviews_en"])
def test_reviews_are_balanced_split_and_disjoint(name):
    dd = load_labelled(name)
    assert list(dd) == ["train", "validation", "test"]
    assert dd["train"].features["label"].names == ["negative", "positive"]
    assert sum(split.num_rows for split in dd.values()) >= 300
    texts = set()
    for split in dd.values():
        labels = split["label"]
        assert labels.count(0) == labels.count(1), "each split is balanced"
        assert texts.isdisjoint(split["text"]), "no review is in two splits"
        texts.update(split["text"])


# ---------------------------------------------------------------- Python code of the interpreter
def test_stdlib_code_corpus_is_real_python():
    ds = code_corpus.python_code_corpus()
    assert ds.column_names == ["path", "content", "size"]
    assert ds.num_rows > 300 and sum(ds["size"]) > 5_000_000
    paths = ds["path"]
    assert paths == sorted(paths)
    assert not any("site-packages" in p or p.startswith("test/") for p in paths)
    row = ds[paths.index("os.py")]
    assert row["content"] == Path(os.__file__).read_text(encoding="utf-8")
    assert row["size"] == len(row["content"].encode("utf-8"))
    for source in ds.select(range(0, ds.num_rows, 25))["content"]:
        ast.parse(source)  # every sampled file is valid Python for this interpreter


def test_stdlib_code_corpus_limits_and_tests():
    assert code_corpus.python_code_corpus(max_files=5).num_rows == 5
    with_tests = [p for p, _ in code_corpus.iter_python_files(include_tests=True)]
    assert any(p.startswith("test/") for p in with_tests)


def test_code_split_is_stable_and_about_one_in_ten():
    train = [p for p, _ in code_corpus.iter_python_files(split="train")]
    validation = [p for p, _ in code_corpus.iter_python_files(split="validation")]
    everything = [p for p, _ in code_corpus.iter_python_files()]
    assert sorted(train + validation) == everything and not set(train) & set(validation)
    assert 0.05 < len(validation) / len(everything) < 0.15
    assert all(code_corpus.code_split(p) == "validation" for p in validation)
    assert code_corpus.load_code_corpus("stdlib", split="validation")["path"] == validation


def test_code_corpus_from_the_hub_offline_fails_at_once(offline):
    with pytest.raises(HubUnavailableError, match="codeparrot"):
        code_corpus.load_code_corpus("codeparrot/codeparrot-clean-valid")
    with pytest.raises(DataSourceError, match="split"):
        list(code_corpus.iter_python_files(split="valid"))


def test_separate_files_share_one_label_encoding(tmp_path):
    pd.DataFrame({"text": list("abc"), "label": ["pos", "neg", "neu"]}).to_json(tmp_path / "tr.jsonl", orient="records", lines=True)
    pd.DataFrame({"text": list("de"), "label": ["pos", "pos"]}).to_json(tmp_path / "te.jsonl", orient="records", lines=True)
    dd = data.load_labelled_files({"train": tmp_path / "tr.jsonl", "test": tmp_path / "te.jsonl"})
    assert list(dd) == ["train", "test"] and dd["test"]["label"] == [2, 2]
    assert dd["test"].features["label"].names == ["neg", "neu", "pos"]
    pd.DataFrame({"text": ["x"], "label": ["pos"]}).to_csv(tmp_path / "te.csv", index=False)
    with pytest.raises(DataSourceError, match="different formats"):
        data.load_labelled_files({"train": tmp_path / "tr.jsonl", "test": tmp_path / "te.csv"})
    with pytest.raises(FileNotFoundError):
        data.load_labelled_files({"train": tmp_path / "nope.csv"})
