from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests import fixtures
from training.data import DataError, Example, carve_validation, own_validation_split, read_dataset


def test_sst2_reads_header_and_labels(tmp_path: Path) -> None:
    path = fixtures.write_sst2(tmp_path / "train.tsv", count=10)
    examples = read_dataset("sst2", path)
    assert len(examples) == 10
    assert {e.label for e in examples} == {"negative", "positive"}
    # A directory resolves to the split's file.
    assert read_dataset("sst2", tmp_path, split="train") == examples


def test_sst2_bad_label_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nbad film\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.tsv:3: label must be 0 or 1"):
        read_dataset("sst2", path)


def test_sst2_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\n\n   \nbad film\t0\n", encoding="utf-8")
    assert [e.label for e in read_dataset("sst2", path)] == ["positive", "negative"]


def test_snips_reads_latin1_file_and_joins_pieces(tmp_path: Path) -> None:
    directory = fixtures.write_snips(tmp_path / "snips", count=30)
    raw = (directory / "train_music_full.json").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    examples = read_dataset("snips", directory)
    assert {e.label for e in examples} == {"booking", "music", "weather"}
    assert any(e.text == "play café music by beyoncé" for e in examples)
    assert all("  " not in e.text for e in examples)


def test_snips_malformed_utterance(tmp_path: Path) -> None:
    (tmp_path / "train_X_full.json").write_text(json.dumps({"X": [{"nodata": []}]}))
    with pytest.raises(DataError, match=r"train_X_full\.json: utterance 0 of 'X' lacks data"):
        read_dataset("snips", tmp_path)


def test_snips_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "train_X_full.json").write_text('{"X": [\n  {oops}\n]}')
    with pytest.raises(DataError, match=r"train_X_full\.json:2: invalid JSON"):
        read_dataset("snips", tmp_path)


def test_text_skips_blank_lines(tmp_path: Path) -> None:
    directory = fixtures.write_text(tmp_path / "ptb", count=20)
    train = read_dataset("text", directory / "train.txt")
    assert len(train) == 18 and all(e.label is None for e in train)
    assert len(read_dataset("text", directory, split="valid")) == 2


def test_csv_with_custom_fields(tmp_path: Path) -> None:
    path = fixtures.write_csv(tmp_path / "data.csv", count=12)
    examples = read_dataset("csv", path, text_field="utterance", label_field="intent")
    assert len(examples) == 12 and examples[0].label in fixtures.INTENTS


def test_csv_missing_column_and_missing_label(tmp_path: Path) -> None:
    path = fixtures.write_csv(tmp_path / "data.csv", count=3)
    with pytest.raises(DataError, match="header lacks the text column 'text'"):
        read_dataset("csv", path)
    path.write_text("text,label\nhello there,greet\nno label here,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.csv:3: missing label field 'label'"):
        read_dataset("csv", path)


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "hi", "label": "greet"}\n\n{"text": "bye"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.jsonl:3: missing label field"):
        read_dataset("jsonl", path)
    path.write_text('{"text": "hi", "label": "greet"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.jsonl:2: invalid JSON"):
        read_dataset("jsonl", path)
    path.write_text('{"text": 5, "label": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="must be a string"):
        read_dataset("jsonl", path)


def test_missing_path_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_dataset("text", tmp_path / "absent.txt")
    with pytest.raises(DataError, match="unknown format"):
        read_dataset("xml", tmp_path)


def test_validation_split_is_seeded_and_stratified(tmp_path: Path) -> None:
    examples = read_dataset("jsonl", fixtures.write_jsonl(tmp_path / "d.jsonl", count=300))
    train, valid = carve_validation(examples, 0.1, seed=7)
    assert len(train) + len(valid) == 300 and len(valid) == 30
    assert {e.label for e in valid} == {e.label for e in train}
    assert carve_validation(examples, 0.1, seed=7) == (train, valid)
    assert not set(map(id, train)) & set(map(id, valid))


def test_a_clinc150_file_holds_its_own_validation_split(tmp_path: Path) -> None:
    path = fixtures.write_clinc(tmp_path / "data_full.json", per_split=60)
    assert own_validation_split("clinc150", path) and own_validation_split("clinc150", tmp_path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["val"] = []
    path.write_text(json.dumps(document), encoding="utf-8")
    assert not own_validation_split("clinc150", path)  # an empty val list: carve one instead
    assert not own_validation_split("clinc150", tmp_path / "missing")
    assert not own_validation_split("csv", path)


def test_clinc150_splits_with_out_of_scope(tmp_path: Path) -> None:
    path = fixtures.write_clinc(tmp_path / "data_full.json", per_split=60)
    train = read_dataset("clinc150", path, split="train")
    assert {e.label for e in train} == {"booking", "music", "weather", "oos"}
    assert sum(e.label == "oos" for e in train) == 15
    assert len(read_dataset("clinc150", path, split="test")) == 20 + 5
    assert read_dataset("clinc150", tmp_path, split="val")  # a directory finds data_full.json
    with pytest.raises(DataError, match="splits are train, val and test"):
        read_dataset("clinc150", path, split="dev")
    path.write_text(json.dumps({"train": [["only text"]], "oos_train": []}))
    with pytest.raises(DataError, match=r"train\[0\] must be \[text, intent\]"):
        read_dataset("clinc150", path)


def test_sentence_split_holds_out_whole_sentences_and_their_phrases() -> None:
    from training.data.split import carve_sentence_validation

    rng = random.Random(4)
    vocabulary = [f"w{i}" for i in range(300)]
    examples = []
    for number in range(60):
        sentence = [rng.choice(vocabulary) for _ in range(12)]
        label = "positive" if number % 2 else "negative"
        examples.append(Example(" ".join(sentence), label))
        for start, end in ((0, 6), (3, 9), (6, 12), (2, 4)):  # phrases cut from it, as SST-2 has
            examples.append(Example(" ".join(sentence[start:end]), label))
    rng.shuffle(examples)
    train, validation = carve_sentence_validation(examples, 0.2, seed=1)
    assert len(validation) == 12 and all(len(e.text.split()) == 12 for e in validation)
    assert sorted(e.label for e in validation).count("positive") == 6  # stratified
    held = "\n".join(f" {e.text} " for e in validation)
    assert not [e for e in train if len(e.text.split()) >= 3 and f" {e.text} " in held]
    # Everything not tied to a held-out sentence still trains: 48 sentences with 4 phrases each,
    # plus the 2-word phrases of the held-out ones (too short to identify a sentence).
    assert len(train) == 48 * 5 + 12
