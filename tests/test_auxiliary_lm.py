"""The auxiliary language-modelling loss of recurrent classifiers (`--lm-loss`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnnserve_bundle.config import Architecture, BundleConfig
from tests.conftest import TINY, run_cli
from training.auxiliary_lm import IGNORED, LanguageModelHead, predicted_words
from training.batching import pad
from training.model import RNNClassifier
from training.trainer import Hyperparameters, Trainer

SEQUENCES = [[5, 6, 7, 8, 9], [12, 5], [14, 15, 5, 6]]


def classifier(embedding_dim: int = 8, hidden: int = 8, bidirectional: bool = True) -> RNNClassifier:
    torch.manual_seed(0)
    arch = Architecture(
        cell="lstm",
        embedding_dim=embedding_dim,
        hidden_size=hidden,
        num_layers=1,
        bidirectional=bidirectional,
        dropout=0.0,
        tied_embeddings=False,
    )
    model = RNNClassifier(arch, 20, 3)
    words = predicted_words(SEQUENCES, 20, limit=6)
    model.language_model = LanguageModelHead(hidden, embedding_dim, bidirectional, words, 20, 0.0)
    return model.eval()


def test_the_predicted_words_are_the_most_frequent_and_never_special() -> None:
    words = predicted_words([[5, 5, 6, 1, 1, 1, 0], [6, 5, 7]], 10, limit=2)
    assert words.tolist() == [5, 6]  # `<unk>` (1) and `<pad>` (0) are the most frequent ids, not words
    assert predicted_words([[5, 2, 3]], 10).tolist() == [5]  # only words the text has


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("sizes", [(8, 8), (10, 8)])  # tied to the table, or through a projection
def test_the_loss_is_each_direction_predicting_its_neighbour(bidirectional: bool, sizes: tuple[int, int]) -> None:
    model = classifier(*sizes, bidirectional=bidirectional)
    head = model.language_model
    padded, lengths = (torch.from_numpy(a) for a in pad(SEQUENCES))
    logits, loss = model(padded, lengths, padded)
    assert torch.equal(logits, model(padded, lengths))  # the classifier's answer does not change

    # By hand, word by word: only the predicted words are targets, never padding.
    outputs, _ = model.rnn(model.embedding(padded), lengths)
    rows = model.embedding.weight[head.rows]
    classes = {int(w): i for i, w in enumerate(head.rows)}
    hidden = sizes[1]

    def mean_loss(pairs: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
        states = torch.stack([s for s, _ in pairs])
        return nn.functional.cross_entropy(head.projection(states) @ rows.t(), torch.tensor([t for _, t in pairs]))

    forward, backward = [], []
    for b, sequence in enumerate(SEQUENCES):
        for t in range(len(sequence)):
            if t + 1 < len(sequence) and sequence[t + 1] in classes:
                forward.append((outputs[b, t, :hidden], classes[sequence[t + 1]]))
            if t >= 1 and sequence[t - 1] in classes:
                backward.append((outputs[b, t, hidden:], classes[sequence[t - 1]]))
    expected = mean_loss(forward)
    if bidirectional:
        expected = (expected + mean_loss(backward)) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    # More padding reads the same.
    wider = torch.nn.functional.pad(padded, (0, 3))
    assert model(wider, lengths, wider)[1].item() == pytest.approx(loss.item(), rel=1e-5)


def test_words_outside_the_predicted_list_are_not_targets() -> None:
    model = classifier()
    assert model.language_model.index[torch.tensor([[5, 19, 0, 2]])].tolist()[0][1:] == [IGNORED] * 3


def test_the_trainer_adds_the_weighted_loss() -> None:
    def trainer(weight: float) -> Trainer:
        hyper = Hyperparameters(
            epochs=1, batch_size=4, learning_rate=1e-3, weight_decay=0, clip_norm=1, patience=1, seed=3, lm_loss=weight
        )
        return Trainer(classifier(), True, hyper, torch.device("cpu"), eos_id=3, unk_id=1)

    labels = np.array([0, 2, 1])
    padded, lengths = (torch.from_numpy(a) for a in pad(SEQUENCES))
    with_lm, plain = trainer(0.5), trainer(0.0)
    with_lm.model.eval()
    plain.model.eval()
    _, head_loss = with_lm.model(padded, lengths, padded)
    expected = plain._batch_loss(SEQUENCES, labels)[0] + 0.5 * head_loss
    assert with_lm._batch_loss(SEQUENCES, labels)[0].item() == pytest.approx(expected.item(), rel=1e-6)


def test_lm_loss_trains_and_leaves_the_served_graph_alone(tmp_path: Path, data_dir: Path) -> None:
    data = ["--format", "csv", "--data", str(data_dir / "intent.csv"), "--text-field", "utterance",
            "--label-field", "intent"]  # fmt: skip
    configs = {}
    for weight in ("0", "0.5"):
        out = tmp_path / "models" / "support" / weight
        run_cli("train", "--task", "intent", *data, "--out", str(out), *TINY, "--lm-loss", weight)
        configs[weight] = BundleConfig.load(out)
    with_lm = configs["0.5"]
    assert with_lm.training["hyperparameters"]["lm_loss"] == 0.5
    assert with_lm.metrics["validation"]["accuracy"] > 0.9
    # The head is dropped before export: the same graph's parameters as without it.
    assert with_lm.architecture.parameters == configs["0"].architecture.parameters

    for task, value in [("intent", "-1"), ("intent", "nan"), ("next-word", "0.5")]:
        source = data if task == "intent" else ["--format", "text", "--data", str(data_dir / "text")]
        refused = run_cli("train", "--task", task, *source, "--out", str(tmp_path / "m" / "x" / "1"),
                          "--lm-loss", value, check=False)  # fmt: skip
        assert refused.returncode == 2 and "--lm-loss" in refused.stderr and "Traceback" not in refused.stderr
