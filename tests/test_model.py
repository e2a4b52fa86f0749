"""Masking: the output for a padded sequence equals the output for the same sequence alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnnserve_bundle.config import Architecture
from training.batching import pad
from training.model import (
    BagClassifier,
    EnsembleClassifier,
    NextWordGraph,
    RNNClassifier,
    RNNLanguageModel,
    StepGraph,
    bigram_buckets,
    bigram_table_size,
    reverse_within_length,
)


def arch(cell: str, bidirectional: bool, layers: int = 2) -> Architecture:
    return Architecture(
        cell=cell,
        embedding_dim=12,
        hidden_size=12,
        num_layers=layers,
        bidirectional=bidirectional,
        dropout=0.0,
        tied_embeddings=not bidirectional,
    )


SEQUENCES = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_classifier_ignores_padding(cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = RNNClassifier(arch(cell, bidirectional), vocab_size=20, num_classes=3).eval()
    ids, lengths = pad(SEQUENCES)
    with torch.no_grad():
        batched = model(torch.from_numpy(ids), torch.from_numpy(lengths))
        for row, sequence in enumerate(SEQUENCES):
            alone = model(torch.tensor([sequence]), torch.tensor([len(sequence)]))
            torch.testing.assert_close(batched[row], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_next_word_ignores_padding(cell: str) -> None:
    torch.manual_seed(0)
    graph = NextWordGraph(RNNLanguageModel(arch(cell, False), vocab_size=20)).eval()
    ids, lengths = pad(SEQUENCES)
    with torch.no_grad():
        batched = graph(torch.from_numpy(ids), torch.from_numpy(lengths))
        for row, sequence in enumerate(SEQUENCES):
            alone = graph(torch.tensor([sequence]), torch.tensor([len(sequence)]))
            torch.testing.assert_close(batched[row], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_stream_language_model_starts_sentences_from_the_mean_state_after_eos(cell: str) -> None:
    torch.manual_seed(0)
    lm = RNNLanguageModel(arch(cell, False, layers=1), vocab_size=20).eval()
    rng = np.random.default_rng(0)
    sentences = [[int(t) for t in rng.integers(4, 20, size=rng.integers(2, 9))] for _ in range(120)]
    eos = 3
    ends = lm.learn_start_state(sentences, eos, rows=2, steps=200)

    # The same mean read independently: both rows of the stream in one pass (one layer: the
    # outputs are the hidden states), at every `<eos>` after the 50 warm-up steps.
    tokens = [t for s in sentences for t in (*s, eos)]
    stream = torch.tensor(tokens[:400]).view(2, 200)
    with torch.no_grad():
        outputs, _ = lm.rnn(lm.embedding(stream))
    at_end = (stream == eos) & (torch.arange(200) >= 50)
    assert ends == int(at_end.sum()) > 0
    torch.testing.assert_close(lm.start_state[0, 0], outputs[at_end].mean(dim=0), atol=1e-5, rtol=1e-5)
    assert lm.start_state.abs().sum() > 0

    # Both serving graphs start there: the step graph's zero state is the start state, its states
    # carry over between chunks, and a sentence read from it ends where the next-word graph does.
    sentence = torch.tensor([sentences[0] + sentences[1]])
    step = StepGraph(lm).eval()
    zeros = [torch.zeros(1, 1, 12) for _ in range(2 if cell == "lstm" else 1)]
    with torch.no_grad():
        whole, *_ = step(sentence, *zeros)
        first, *state = step(sentence[:, :4], *zeros)
        rest, *_ = step(sentence[:, 4:], *state)
        from_start, _ = lm(sentence, lm.initial_state(1))
        last = NextWordGraph(lm).eval()(sentence, torch.tensor([sentence.size(1)]))
        from_zeros, _ = lm(sentence)
    torch.testing.assert_close(whole, from_start)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last[0], whole[0, -1])
    assert not torch.allclose(whole, from_zeros, atol=1e-3)


def test_padding_changes_output_without_masking() -> None:
    """The check above can fail: a naive read of the padded steps gives another answer."""
    torch.manual_seed(0)
    model = RNNClassifier(arch("lstm", True), vocab_size=20, num_classes=3).eval()
    ids, _ = pad(SEQUENCES)
    full = torch.full((3,), ids.shape[1])
    with torch.no_grad():
        naive = model(torch.from_numpy(ids), full)[1]
        alone = model(torch.tensor([SEQUENCES[1]]), torch.tensor([2]))[0]
    assert not torch.allclose(naive, alone, atol=1e-3)


def test_reverse_within_length_keeps_padding() -> None:
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]]).unsqueeze(2).float()
    reversed_ = reverse_within_length(x, torch.tensor([3, 2])).squeeze(2)
    assert reversed_.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_lstm_forget_gate_bias_is_one() -> None:
    model = RNNClassifier(arch("lstm", True, layers=1), vocab_size=20, num_classes=2)
    layer = model.rnn.forward_layers[0]
    hidden = layer.hidden_size
    total = layer.bias_ih_l0 + layer.bias_hh_l0
    assert torch.all(total[hidden : 2 * hidden] == 1.0)


def test_word_dropout_replaces_real_words_by_unk() -> None:
    from training.trainer import Hyperparameters, Trainer

    hyper = Hyperparameters(
        epochs=1, batch_size=4, learning_rate=1e-3, weight_decay=0, clip_norm=1, patience=1, seed=3, word_dropout=0.5
    )
    model = RNNClassifier(arch("lstm", True), 20, 3)
    trainer = Trainer(model, True, hyper, torch.device("cpu"), eos_id=3, unk_id=1)
    ids = torch.from_numpy(pad([list(range(4, 20))] * 8 + [[5, 6]])[0])
    dropped = trainer._word_dropout(ids)
    real = ids != 0
    replaced = (dropped != ids) & real
    assert torch.all(dropped[replaced] == 1)  # replaced by <unk>, nothing else
    assert torch.all(dropped[~real] == 0)  # padding untouched
    assert 0.35 < replaced.sum().item() / real.sum().item() < 0.65
    hyper.word_dropout = 0.0
    assert torch.equal(trainer._word_dropout(ids), ids)


def _fit_tiny_classifier(ema_decay: float, optimizer: str):
    from training.trainer import Hyperparameters, Split, Trainer

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    ids = [list(rng.integers(4, 20, size=rng.integers(2, 7))) for _ in range(64)]
    labels = np.array([int(s[0] >= 12) for s in ids])  # learnable from the first word
    split = Split([[int(t) for t in s] for s in ids], labels)
    # AdamW's one-cycle schedule does not depend on validation; SGD at a high rate is divided by 4
    # when validation stalls, and its weights wander: the regime where an average helps.
    rate = 1e-2 if optimizer == "adamw" else 2.0
    hyper = Hyperparameters(
        epochs=4,
        batch_size=8,
        learning_rate=rate,
        weight_decay=0,
        clip_norm=1,
        patience=4,
        seed=3,
        optimizer=optimizer,
        ema_decay=ema_decay,
    )
    trainer = Trainer(RNNClassifier(arch("lstm", True), 20, 2), True, hyper, torch.device("cpu"), eos_id=3, unk_id=1)
    return trainer, trainer.fit(split, split), split


def test_rdrop_adds_the_symmetric_kl_between_two_dropout_readings_of_the_batch() -> None:
    from training.trainer import Hyperparameters, Trainer

    def trainer(rdrop: float) -> Trainer:
        torch.manual_seed(0)
        hyper = Hyperparameters(
            epochs=1, batch_size=4, learning_rate=1e-3, weight_decay=0, clip_norm=1, patience=1, seed=3, rdrop=rdrop
        )
        model = RNNClassifier(arch("lstm", True).model_copy(update={"dropout": 0.5}), 20, 3)
        return Trainer(model, True, hyper, torch.device("cpu"), eos_id=3, unk_id=1)

    ids = [list(s) for s in SEQUENCES]
    labels = np.array([0, 2, 1])
    with_rdrop = trainer(2.0)
    with_rdrop.model.train()
    torch.manual_seed(5)
    loss, count = with_rdrop._batch_loss(ids, labels)
    # The same dropout draws, by hand: both readings of the batch in one pass, their mean
    # cross-entropy, and twice the mean over examples of (KL(p1 || p2) + KL(p2 || p1)) / 2.
    padded, lengths = pad(ids)
    torch.manual_seed(5)
    doubled = with_rdrop.model(torch.from_numpy(padded).repeat(2, 1), torch.from_numpy(lengths).repeat(2))
    p1, p2 = torch.softmax(doubled, dim=1).chunk(2)
    kl = ((p1 * (p1 / p2).log()).sum(dim=1) + (p2 * (p2 / p1).log()).sum(dim=1)).mean() / 2
    cross_entropy = nn.functional.cross_entropy(doubled, torch.from_numpy(labels).repeat(2))
    assert count == 3 and kl > 1e-4  # dropout makes the two readings differ
    assert loss.item() == pytest.approx((cross_entropy + 2.0 * kl).item(), rel=1e-5)

    # Without dropout the readings agree and the term vanishes: the plain loss.
    with_rdrop.model.eval()
    plain = trainer(0.0)
    plain.model.eval()
    assert with_rdrop._batch_loss(ids, labels)[0].item() == pytest.approx(plain._batch_loss(ids, labels)[0].item())


def test_weight_averaging_leaves_the_training_steps_alone() -> None:
    _, plain, _ = _fit_tiny_classifier(0.0, "adamw")
    _, averaged, _ = _fit_tiny_classifier(0.9, "adamw")
    assert [e["train_loss"] for e in averaged.history] == [e["train_loss"] for e in plain.history]
    assert plain.kept == "last"


def test_weight_averaging_keeps_the_average_unless_the_last_weights_validate_better() -> None:
    trainer, averaged, split = _fit_tiny_classifier(0.8, "sgd")
    # The average was validated and kept, and the figures recorded are the kept weights'.
    assert averaged.kept == "average"
    assert trainer.evaluate(split) == averaged.best_metrics == averaged.history[averaged.best_epoch - 1]["validation"]

    # An average whose horizon is far longer than the run (about the first step's weights) loses
    # to the trained weights, which are kept: a short run is not spoiled by a long average.
    trainer, too_long, split = _fit_tiny_classifier(0.99999, "sgd")
    assert too_long.kept == "last"
    assert too_long.best_metrics["accuracy"] > max(e["validation"]["accuracy"] for e in too_long.history)
    assert trainer.evaluate(split) == too_long.best_metrics


def _members(kinds: str) -> list[RNNClassifier | BagClassifier]:
    return [
        BagClassifier(20, 12, 1024, 4, 0.0).eval()
        if kind == "bag"
        else RNNClassifier(arch(kind, True, 1), 20, 4).eval()
        for kind in kinds.split()
    ]


@pytest.mark.parametrize("kinds", ["lstm gru lstm", "lstm bag"])
def test_an_ensemble_answers_its_members_mean_probability_and_ignores_padding(kinds: str, tmp_path: Path) -> None:
    from training.export import export_classifier

    torch.manual_seed(0)
    members = _members(kinds)
    ensemble = EnsembleClassifier(members).eval()
    ids, lengths = pad(SEQUENCES)
    ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(ids_t, lengths_t), dim=1) for m in members]).mean(dim=0)
        answer = torch.softmax(ensemble(ids_t, lengths_t), dim=1)
        # Each sequence alone, without padding, gets the same answer.
        alone = torch.cat([ensemble(torch.tensor([s]), torch.tensor([len(s)])) for s in SEQUENCES])
    torch.testing.assert_close(answer, mean)
    torch.testing.assert_close(torch.softmax(alone, dim=1), mean)
    assert not torch.allclose(mean, torch.softmax(members[0](ids_t, lengths_t), dim=1))
    # The graph ONNX Runtime runs gives the same answers on padded batches.
    assert export_classifier(ensemble, tmp_path, [list(s) for s in SEQUENCES])["max_abs_diff"] < 1e-4


def test_a_bag_reads_the_mean_of_its_word_and_bigram_vectors_and_ignores_padding() -> None:
    torch.manual_seed(0)
    bag = BagClassifier(vocab_size=20, embedding_dim=6, buckets=64, num_classes=3, dropout=0.0).eval()
    ids, lengths = pad(SEQUENCES)
    ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
    with torch.no_grad():
        batched = bag(ids_t, lengths_t)
        for row, sequence in enumerate(SEQUENCES):
            # By hand: each word's vector and the vector of (the word before it, or <pad>, the word).
            pairs = [(a * 1_000_003 + b) % 64 for a, b in zip([0, *sequence], sequence, strict=False)]
            vectors = torch.cat([bag.embedding.weight[sequence], bag.pairs.weight[pairs]])
            torch.testing.assert_close(batched[row], bag.head(vectors.mean(dim=0)), atol=1e-5, rtol=1e-5)
            alone = bag(torch.tensor([sequence]), torch.tensor([len(sequence)]))
            torch.testing.assert_close(batched[row], alone[0], atol=1e-5, rtol=1e-5)
        # Word order reaches the bag through its pairs: the same words reversed read otherwise.
        reversed_ = bag(torch.tensor([SEQUENCES[0][::-1]]), torch.tensor([len(SEQUENCES[0])]))
    assert not torch.allclose(reversed_[0], batched[0], atol=1e-4)
    assert bigram_buckets(torch.tensor([[5, 6]]), 1 << 40).tolist() == [[5, 5 * 1_000_003 + 6]]


def test_a_bigram_table_holds_the_distinct_pairs_within_bounds() -> None:
    assert bigram_table_size([[4, 5, 6], [4, 5]]) == 1 << 10  # 3 pairs: the floor
    many = [[a, b] for a in range(4, 104) for b in range(4, 104)]  # 10,100 distinct pairs (and 100 starts)
    assert bigram_table_size(many) == 1 << 14  # rounded up to a power of two
    assert bigram_table_size([[a, b] for a in range(1000) for b in range(200)]) == 1 << 16  # capped


def test_operating_points_choose_on_the_validation_curve() -> None:
    from training.data import DataError
    from training.out_of_scope import OperatingPoint, choose

    # (threshold, in-scope accuracy, out-of-scope recall), thresholds increasing. The class catches
    # every validation `oos` example from the lowest threshold on, so recall cannot rank rows 0-3.
    curve = np.array([[0.0, 0.99, 1.0], [0.3, 0.985, 1.0], [0.5, 0.98, 1.0], [0.7, 0.97, 1.0], [0.9, 0.9, 1.0]])
    # In-scope accuracy >= X: the accuracy accepted is spent on the threshold.
    assert choose(curve, OperatingPoint.parse("in-scope-accuracy=0.98")) == 2
    assert choose(curve, OperatingPoint.parse("in-scope-accuracy=0.99")) == 0
    assert choose(curve, OperatingPoint.parse("in-scope-accuracy=1.0")) == 0  # unreachable: the closest
    assert choose(curve, OperatingPoint.parse("oos-recall=1.0")) == 0  # the most accuracy at that recall
    assert choose(curve, OperatingPoint.parse("balanced")) == 0
    # The default: a cost in in-scope accuracy against the first row (no threshold), spent too.
    assert choose(curve, OperatingPoint.parse("in-scope-cost=0.01")) == 2
    assert choose(curve, OperatingPoint.parse("in-scope-cost=0.005")) == 1
    assert choose(curve, OperatingPoint.parse("in-scope-cost=0")) == 0
    # Where recall still rises, the most recall at the accuracy asked for.
    rising = np.array([[0.0, 0.99, 0.6], [0.4, 0.985, 0.8], [0.6, 0.97, 0.9]])
    assert choose(rising, OperatingPoint.parse("in-scope-accuracy=0.98")) == 1
    assert choose(rising, OperatingPoint.parse("oos-recall=0.7")) == 1
    assert choose(rising, OperatingPoint.parse("in-scope-cost=0.02")) == 2
    # Few validation `oos` examples: balanced gives 9 points of accuracy for one of ten of them.
    few = np.array([[0.0, 0.93, 0.4], [0.3, 0.925, 0.5], [0.5, 0.84, 0.6]])
    assert choose(few, OperatingPoint.parse("balanced")) == 2
    assert choose(few, OperatingPoint.parse("in-scope-cost=0.005")) == 1
    for bad in ("in-scope-cost=1", "in-scope-cost=-0.1", "in-scope-cost=x", "in-scope-accuracy=0", "cost=0.1"):
        with pytest.raises(DataError, match="operating point"):
            OperatingPoint.parse(bad)
