"""Small datasets that the tests write themselves (no dependence on ../shared)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

POSITIVE = ["great", "wonderful", "brilliant", "moving", "funny", "superb", "charming", "lovely"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "clumsy", "tedious", "bland", "painful"]
SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the story", "every scene"]
FILLERS = ["", "really", "truly", "quite", "honestly , it was", "in the end it was"]

INTENTS = {
    "weather": [
        "will it rain in {place}",
        "weather in {place} tomorrow",
        "is it cold in {place} today",
        "forecast for {place} this weekend",
    ],
    "music": [
        "play some {genre}",
        "put on {genre} music",
        "i want to hear {genre} by a band",
        "start my {genre} playlist",
    ],
    "booking": [
        "book a table in {place}",
        "reserve a restaurant for {n} in {place}",
        "find me a table for {n} people",
        "i need a dinner reservation in {place}",
    ],
}
PLACES = ["paris", "london", "tokyo", "berlin", "rome", "oslo"]
GENRES = ["jazz", "rock", "blues", "techno", "folk"]


def sentiment_rows(count: int, seed: int = 0) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        text = " ".join(p for p in (rng.choice(SUBJECTS), "was", rng.choice(FILLERS), word) if p)
        if rng.random() < 0.3:
            text += " , " + " ".join(rng.choice(SUBJECTS + FILLERS).split()) + " too"
        if i % 3 == 0:  # some sentences end in a period, where a long text is cut into windows
            text += " ."
        rows.append((text, label))
    return rows


def write_sst2(path: Path, count: int = 400) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["sentence\tlabel"] + [f"{t}\t{y}" for t, y in sentiment_rows(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def intent_rows(count: int, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    names = sorted(INTENTS)
    rows = []
    for i in range(count):
        intent = names[i % len(names)]
        template = rng.choice(INTENTS[intent])
        text = template.format(place=rng.choice(PLACES), genre=rng.choice(GENRES), n=rng.randint(2, 8))
        rows.append((text, intent))
    return rows


def write_snips(directory: Path, count: int = 300, latin1_intent: str = "music") -> Path:
    """The SNIPS 2017 layout, with one file in Latin-1 as in the published benchmark."""
    directory.mkdir(parents=True, exist_ok=True)
    by_intent: dict[str, list[dict]] = {}
    for text, intent in intent_rows(count):
        words = text.split(" ", 1)
        pieces = (
            [{"text": words[0] + " "}, {"text": words[1], "entity": "thing"}] if len(words) > 1 else [{"text": text}]
        )
        by_intent.setdefault(intent, []).append({"data": pieces})
    by_intent[latin1_intent].append({"data": [{"text": "play café music by beyoncé"}]})
    for intent, utterances in by_intent.items():
        payload = json.dumps({intent: utterances}, ensure_ascii=False, indent=1)
        encoding = "latin-1" if intent == latin1_intent else "utf-8"
        (directory / f"train_{intent}_full.json").write_bytes(payload.encode(encoding))
    return directory


def write_csv(path: Path, count: int = 300) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "utterance", "intent"])
        for i, (text, intent) in enumerate(intent_rows(count)):
            writer.writerow([i, text, intent])
    return path


def write_jsonl(path: Path, count: int = 300) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"text": t, "label": y}) for t, y in intent_rows(count)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def lm_sentences(count: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    subjects = ["the company", "the bank", "the market", "mr. smith", "the government"]
    verbs = ["said", "reported", "expects", "announced"]
    objects = [
        "higher profits",
        "a loss of N million",
        "new rules",
        "lower prices",
        "a merger",
        "a profit of $ N million",
        "it does n't expect a merger",
    ]
    sentences = []
    for _ in range(count):
        parts = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects)]
        if rng.random() < 0.4:
            parts += ["in", rng.choice(["the third quarter", "N", "tokyo", "new york"])]
        sentences.append(" ".join(parts))
    return sentences


def write_text(directory: Path, count: int = 400) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    sentences = lm_sentences(count)
    cut = int(len(sentences) * 0.9)
    (directory / "train.txt").write_text("\n".join(sentences[:cut]) + "\n\n", encoding="utf-8")
    (directory / "valid.txt").write_text("\n".join(sentences[cut:]) + "\n", encoding="utf-8")
    return directory


OUT_OF_SCOPE = [
    "what is the meaning of life",
    "tell me a joke about cats",
    "how tall is mount everest",
    "who won the football match",
    "translate hello into french",
    "what is my bank balance",
    "how do i cook pasta",
    "set an alarm for six",
    "what is the capital of peru",
    "order me a pizza",
]


def write_clinc(path: Path, per_split: int = 240) -> Path:
    """The CLINC150 `data_full.json` layout: train/val/test and their oos_* counterparts."""
    rng = random.Random(3)
    document = {}
    for offset, split in enumerate(("train", "val", "test")):
        rows = intent_rows(per_split if split == "train" else per_split // 3, seed=10 + offset)
        document[split] = [[text, intent] for text, intent in rows]
        document[f"oos_{split}"] = [[rng.choice(OUT_OF_SCOPE), "oos"] for _ in range(len(rows) // 4)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
