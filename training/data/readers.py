"""Readers for the dataset formats as they are published.

Every reader returns a list of `Example`. Malformed records raise `DataError`
naming the file and line; blank lines are skipped and counted.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A dataset file cannot be read as the requested format."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str | None = None


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some published files (SNIPS' PlayMusic) are Latin-1: every byte string decodes as it.
        log.warning("%s is not valid UTF-8; reading it as Latin-1", path)
        return raw.decode("latin-1")


def _pick_file(path: Path, split: str, patterns: tuple[str, ...]) -> Path:
    """A file path is used as is; a directory is searched for the split's file."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    for pattern in patterns:
        candidate = path / pattern.format(split=split)
        if candidate.is_file():
            return candidate
    names = ", ".join(p.format(split=split) for p in patterns)
    raise DataError(f"{path}: no file for split {split!r} (looked for {names})")


def _report_skipped(path: Path, skipped: int) -> None:
    if skipped:
        log.info("%s: skipped %d blank line(s)", path, skipped)


def read_sst2(path: Path, split: str = "train", **_: str) -> list[Example]:
    """GLUE SST-2 TSV: header `sentence<TAB>label` (either column order); label 0/1."""
    file = _pick_file(path, split, ("{split}.tsv",))
    lines = _decode(file).splitlines()
    if not lines:
        raise DataError(f"{file}: empty file")
    header = lines[0].split("\t")
    if "sentence" not in header or "label" not in header:
        raise DataError(f"{file}:1: expected a header with 'sentence' and 'label', got {header!r}")
    text_col, label_col = header.index("sentence"), header.index("label")
    examples, skipped = [], 0
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            skipped += 1
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise DataError(f"{file}:{number}: expected {len(header)} tab-separated fields")
        label = cells[label_col].strip()
        if label not in ("0", "1"):
            raise DataError(f"{file}:{number}: label must be 0 or 1, got {label!r}")
        text = cells[text_col].strip()
        if not text:
            skipped += 1
            continue
        examples.append(Example(text, "positive" if label == "1" else "negative"))
    _report_skipped(file, skipped)
    return examples


def read_snips(path: Path, split: str = "train", **_: str) -> list[Example]:
    """SNIPS 2017 benchmark: a directory of `{split}_<Intent>[_full].json` files."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        prefix = "validate" if split in ("val", "valid", "validation") else split
        files = sorted(path.glob(f"{prefix}_*.json"))
        if not files and (path / split).is_dir():
            files = sorted((path / split).glob(f"{prefix}_*.json"))
    else:
        raise DataError(f"{path}: no such file or directory")
    if not files:
        raise DataError(f"{path}: no SNIPS files named {split}_<Intent>.json")
    examples = []
    for file in files:
        try:
            document = json.loads(_decode(file))
        except json.JSONDecodeError as error:
            raise DataError(f"{file}:{error.lineno}: invalid JSON: {error.msg}") from error
        if not isinstance(document, dict) or not document:
            raise DataError(f"{file}: expected an object {{intent: [utterances]}}")
        for intent, utterances in document.items():
            if not isinstance(utterances, list):
                raise DataError(f"{file}: {intent!r} must map to a list of utterances")
            for index, utterance in enumerate(utterances):
                try:
                    text = "".join(piece["text"] for piece in utterance["data"]).strip()
                except (KeyError, TypeError) as error:
                    raise DataError(f"{file}: utterance {index} of {intent!r} lacks data[].text") from error
                if text:
                    examples.append(Example(" ".join(text.split()), intent))
    return examples


def read_text(path: Path, split: str = "train", **_: str) -> list[Example]:
    """Plain text, one sentence per line (PTB / WikiText style); blank lines skipped."""
    file = _pick_file(path, split, ("{split}.txt", "{split}.tokens"))
    examples, skipped = [], 0
    for line in _decode(file).splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("=") and stripped.endswith("=")):
            skipped += 1  # blank lines and WikiText section headings
            continue
        examples.append(Example(stripped))
    _report_skipped(file, skipped)
    if not examples:
        raise DataError(f"{file}: no text lines")
    return examples


def _labelled(file: Path, number: int, row: dict, text_field: str, label_field: str) -> Example:
    if text_field not in row or row[text_field] is None:
        raise DataError(f"{file}:{number}: missing text field {text_field!r}")
    text = row[text_field]
    if not isinstance(text, str):
        raise DataError(f"{file}:{number}: text field {text_field!r} must be a string")
    if not label_field:  # texts only (out-of-scope examples, language-model data)
        return Example(text.strip())
    label = row.get(label_field)
    if label is None or str(label).strip() == "":
        raise DataError(f"{file}:{number}: missing label field {label_field!r}")
    return Example(text.strip(), str(label).strip())


def read_csv(
    path: Path, split: str = "train", text_field: str = "text", label_field: str = "label", **_: str
) -> list[Example]:
    """CSV with a header row; text and label columns named by the caller."""
    file = _pick_file(path, split, ("{split}.csv",))
    reader = csv.DictReader(_decode(file).splitlines())
    if reader.fieldnames is None or text_field not in reader.fieldnames:
        raise DataError(f"{file}:1: header lacks the text column {text_field!r}")
    examples, skipped = [], 0
    for number, row in enumerate(reader, start=2):
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            skipped += 1
            continue
        example = _labelled(file, number, row, text_field, label_field)
        if example.text:
            examples.append(example)
        else:
            skipped += 1
    _report_skipped(file, skipped)
    return examples


def write_csv(path: Path, examples: list[Example]) -> Path:
    """Examples as a `text,label` CSV that `read_csv` reads back (splits written by the studies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((e.text, e.label) for e in examples)
    return path


def read_jsonl(
    path: Path, split: str = "train", text_field: str = "text", label_field: str = "label", **_: str
) -> list[Example]:
    """One JSON object per line with text and label fields named by the caller."""
    file = _pick_file(path, split, ("{split}.jsonl", "{split}.json"))
    examples, skipped = [], 0
    for number, line in enumerate(_decode(file).splitlines(), start=1):
        if not line.strip():
            skipped += 1
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{file}:{number}: invalid JSON: {error.msg}") from error
        if not isinstance(row, dict):
            raise DataError(f"{file}:{number}: expected a JSON object")
        example = _labelled(file, number, row, text_field, label_field)
        if example.text:
            examples.append(example)
        else:
            skipped += 1
    _report_skipped(file, skipped)
    return examples


OUT_OF_SCOPE = "oos"
CLINC_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _clinc150_document(path: Path, split: str) -> tuple[Path, object]:
    """The CLINC150 file that holds `split` (the file itself, or `data_full.json` in a directory), parsed."""
    file = _pick_file(path, split, ("data_full.json", "{split}.json"))
    if split not in CLINC_SPLITS:
        raise DataError(f"{file}: CLINC150 splits are train, val and test, not {split!r}")
    try:
        return file, json.loads(_decode(file))
    except json.JSONDecodeError as error:
        raise DataError(f"{file}:{error.lineno}: invalid JSON: {error.msg}") from error


def read_clinc150(path: Path, split: str = "train", **_: str) -> list[Example]:
    """CLINC150 (Larson et al. 2019): one JSON file with `train`, `val`, `test` and their
    `oos_*` counterparts, each a list of [text, intent]; out-of-scope examples get the label `oos`."""
    file, document = _clinc150_document(path, split)
    key = CLINC_SPLITS[split]
    if not isinstance(document, dict) or key not in document:
        raise DataError(f"{file}: no {key!r} list (expected keys train, val, test, oos_train, oos_val, oos_test)")
    examples = []
    for part, fallback in ((key, None), (f"oos_{key}", OUT_OF_SCOPE)):
        for index, row in enumerate(document.get(part, [])):
            if not (isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row)):
                raise DataError(f"{file}: {part}[{index}] must be [text, intent]")
            text, intent = row[0].strip(), row[1].strip()
            if text:
                examples.append(Example(text, fallback or intent))
    return examples


Reader = Callable[..., list[Example]]

FORMATS: dict[str, Reader] = {
    "sst2": read_sst2,
    "snips": read_snips,
    "clinc150": read_clinc150,
    "text": read_text,
    "csv": read_csv,
    "jsonl": read_jsonl,
}


def own_validation_split(fmt: str, path: Path) -> bool:
    """Whether the training source itself holds a validation split: a CLINC150 file with a
    non-empty `val` list. The benchmark's protocol tunes on that split, and it holds far more
    out-of-scope examples (100) than a tenth of its `oos_train` would (10)."""
    if fmt != "clinc150":
        return False
    try:
        _, document = _clinc150_document(Path(path), "validation")
    except DataError:
        return False  # no such file: carve one; a broken file: the training read names the fault
    return isinstance(document, dict) and bool(document.get(CLINC_SPLITS["validation"]))


def read_dataset(fmt: str, path: Path, split: str = "train", **fields: str) -> list[Example]:
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    examples = FORMATS[fmt](Path(path), split=split, **fields)
    if not examples:
        raise DataError(f"{path}: no examples for split {split!r}")
    return examples
