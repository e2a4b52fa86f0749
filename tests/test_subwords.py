"""`--subwords`: word vectors trained as their own plus their character n-grams', folded into one
plain table on export, so the graph and the service's tokenizer are those of a model without them."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
from torch import nn

from rnnserve_bundle.config import BundleConfig
from tests.conftest import TINY, run_cli
from training.model import BagClassifier
from training.sparse_tables import JointOptimizer, set_sparse_tables
from training.subwords import SubwordEmbedding, char_ngrams, fold_subwords, ngram_ids

VOCAB = {"<pad>": 0, "<unk>": 1, "transfer": 2, "transfers": 3, "card": 4}


def _table() -> SubwordEmbedding:
    torch.manual_seed(0)
    buckets = 1 << 16  # no two of these words' n-grams share a row (at 1,024, "card" and "transfer" do)
    return SubwordEmbedding(nn.Embedding(len(VOCAB), 6, padding_idx=0), ngram_ids(VOCAB, buckets), buckets)


def test_ngrams_mark_the_word_boundaries_and_leave_out_the_whole_word() -> None:
    grams = char_ngrams("card")
    assert {"<ca", "<car", "<card", "car", "card>", "ard>", "rd>"} <= set(grams)
    assert "<card>" not in grams and all(3 <= len(g) <= 5 for g in grams)
    ids = ngram_ids(VOCAB, 1024)
    assert (ids[0] == 0).all() and (ids[1] == 0).all()  # special tokens: no n-grams
    assert ((ids[2] > 0) & (ids[2] <= 1024)).sum() == len(char_ngrams("transfer"))
    assert torch.equal(ids, ngram_ids(VOCAB, 1024))  # the same ids every run (crc32, not hash())
    pasted = {**VOCAB, "x" * 5000: 5}  # a long token: no n-grams, and the id table stays narrow
    wide = ngram_ids(pasted, 1024)
    assert (wide[5] == 0).all() and wide.size(1) == ids.size(1)


def test_a_word_s_training_moves_the_words_that_share_its_ngrams_only() -> None:
    table = _table()
    before = table.folded().weight.detach().clone()
    table(torch.tensor([[2]])).sum().backward()  # "transfer" alone
    with torch.no_grad():
        for p in table.parameters():
            p -= p.grad
    moved = (table.folded().weight.detach() != before).any(dim=1)
    assert moved.tolist() == [False, False, True, True, False]  # "transfers" shares; "card" does not


def test_the_folded_table_answers_what_the_training_table_does() -> None:
    model = nn.Sequential(_table())
    ids = torch.tensor([[2, 3, 4, 0], [1, 4, 0, 0]])
    want = model(ids)
    assert torch.equal(want[0, 3], torch.zeros(6))  # padding stays zero
    fold_subwords(model)
    assert type(model[0]) is nn.Embedding
    torch.testing.assert_close(model(ids), want)


def test_a_model_trained_with_subwords_exports_the_plain_graph(tmp_path: Path, data_dir: Path) -> None:
    data = ["--format", "csv", "--data", str(data_dir / "intent.csv"), "--text-field", "utterance",
            "--label-field", "intent"]  # fmt: skip
    ops, parameters = {}, {}
    for name, extra in [("plain", ["--no-subwords"]), ("subwords", [])]:  # on by default
        out = tmp_path / "models" / name / "1"
        run_cli("train", "--task", "intent", *data, "--out", str(out), *TINY, "--ensemble", "1",
                "--bag-members", "1", *extra)  # fmt: skip
        config = BundleConfig.load(out)
        assert config.metrics["validation"]["accuracy"] > 0.5 and config.export["max_abs_diff"] < 1e-4
        ops[name] = sorted(node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node)
        assert (config.architecture.ngram_buckets > 0) == (name == "subwords")
        parameters[name] = config.architecture.parameters
        evaluated = run_cli("evaluate", "--model", str(out), *data)
        assert json.loads(evaluated.stdout)["accuracy"] > 0.5
    assert ops["subwords"] == ops["plain"]
    assert parameters["subwords"] == parameters["plain"]  # the served graph's, without the n-gram table

    refused = run_cli("train", "--task", "next-word", "--format", "text", "--data", str(data_dir / "text"),
                      "--out", str(tmp_path / "m" / "lm" / "1"), "--subwords", check=False)  # fmt: skip
    assert refused.returncode == 2 and "--subwords" in refused.stderr and "Traceback" not in refused.stderr


def test_with_sparse_gradients_the_ngram_table_moves_only_the_rows_read() -> None:
    torch.manual_seed(0)
    bag = BagClassifier(vocab_size=len(VOCAB), embedding_dim=6, buckets=64, num_classes=2, dropout=0.0)
    bag.embedding = SubwordEmbedding(bag.embedding, ngram_ids(VOCAB, 1 << 16), 1 << 16)
    tables = set_sparse_tables(bag, True)
    assert len(tables) == 3  # words, word pairs, n-grams
    before = bag.embedding.grams.weight.detach().clone()
    optimizer = JointOptimizer(bag, tables, lr=0.1, weight_decay=0.1, fused=False)
    torch.nn.functional.cross_entropy(bag(torch.tensor([[4, 0]]), torch.tensor([1])), torch.tensor([1])).backward()
    assert bag.embedding.grams.weight.grad.is_sparse
    optimizer.step()
    moved = (bag.embedding.grams.weight.detach() != before).any(dim=1).nonzero().flatten()
    assert sorted(moved.tolist()) == sorted(set(ngram_ids(VOCAB, 1 << 16)[4].tolist()) - {0})  # "card"'s
