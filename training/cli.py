"""Command line: `python -m training train ...` and `python -m training evaluate ...`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rnnserve_bundle.config import Task
from training.data import FORMATS, DataError, read_dataset
from training.export import ExportError
from training.out_of_scope import DEFAULT_OPERATING_POINT


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train, export and verify a model bundle")
    train.add_argument("--task", required=True, choices=[t.value for t in Task])
    train.add_argument("--format", required=True, choices=list(FORMATS), dest="data_format")
    train.add_argument("--data", required=True, type=Path, help="training file or directory")
    train.add_argument("--out", type=Path, help="bundle directory models/<name>/<version>")
    train.add_argument("--valid-data", type=Path, help="validation data (default: the source's own, else 10%%)")
    train.add_argument("--valid-fraction", type=float, default=0.1)
    train.add_argument(
        "--valid-split",
        choices=["auto", "random", "sentences"],
        default="auto",
        help="how the validation split is carved: random (stratified), or sentences: whole sentences held "
        "out with every phrase of them (SST-style phrase data); auto: a CLINC150 file's own val split, "
        "sentences for sst2, random otherwise",
    )
    train.add_argument("--name", help="model name (default: the parent of --out)")
    train.add_argument("--arch", choices=["lstm", "gru"], dest="cell")
    train.add_argument("--embedding-dim", type=int)
    train.add_argument("--hidden-size", type=int)
    train.add_argument("--layers", type=int, dest="num_layers")
    train.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    train.add_argument("--dropout", type=float)
    train.add_argument(
        "--word-dropout",
        type=float,
        help="share of input words replaced by <unk> in training (intent default 0.15, else 0)",
    )
    train.add_argument("--max-length", type=int)
    train.add_argument("--vocab-size", type=int)
    train.add_argument("--min-frequency", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float, dest="learning_rate")
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--clip-norm", type=float)
    train.add_argument("--patience", type=int)
    train.add_argument(
        "--optimizer",
        choices=["adamw", "sgd"],
        help="adamw: one-cycle schedule; sgd: learning rate divided by 4 when validation stalls (next-word default)",
    )
    train.add_argument(
        "--bptt",
        type=int,
        help="next-word: train on one continuous stream with the state carried across windows of this many "
        "steps (default 35); 0: whole sentences, padded",
    )
    train.add_argument(
        "--ema-decay",
        type=float,
        help="validate, keep and export an exponential moving average of the weights with this decay "
        "per step (e.g. 0.999); 0: the weights as trained",
    )
    train.add_argument(
        "--rdrop",
        type=float,
        help="classifiers: weight of R-Drop's consistency term (each batch read twice under independent "
        "dropout, the symmetric KL divergence between the two predictions added to the loss); 0: off",
    )
    train.add_argument(
        "--lm-loss",
        type=float,
        help="classifiers: weight of an auxiliary language-modelling loss in training: the recurrent "
        "members' forward states predict the next word and their backward states the previous one, "
        "through their own word table; dropped before export, so serving does not change; about half a "
        "point for one intent BiLSTM at 2.6 times its training time, lower on sentiment (training/REPORT.md); "
        "default 0: off",
    )
    train.add_argument(
        "--ensemble",
        type=int,
        help="classifiers: train this many models with successive seeds and serve them as one graph "
        "(their mean probability); each adds its training time and its serving cost",
    )
    train.add_argument(
        "--bag-members",
        type=int,
        help="classifiers: add this many bag-of-words-and-bigrams models (fastText's classifier, no "
        "recurrence) to the --ensemble members; 0: none",
    )
    train.add_argument("--seed", type=int)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--run-dir", type=Path, help="where history.json and plots go")
    train.add_argument(
        "--sparse-gradients",
        action="store_const",
        const=True,
        help="bag members: train their lookup tables with sparse gradients (SparseAdam updates only the "
        "rows a batch reads, with no weight decay on them; the rest keeps AdamW): far faster steps on "
        "large tables, measured in training/REPORT.md; one process only",
    )
    train.add_argument(
        "--subwords",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bag members: train each word's vector as its own plus the mean of its 3- to 5-character "
        "n-grams' (fastText's subwords), so rare words share what their n-grams learn elsewhere; "
        "folded into one plain table on export, so the graph and the tokenizer do not change "
        "(default: on for intents; measured in training/REPORT.md)",
    )
    train.add_argument(
        "--lookup-tables",
        choices=["float32", "int8"],
        help="int8: store the graph's lookup tables (word and word-pair vectors) as int8 with a scale "
        "per row, a quarter of their size; the arithmetic stays float32 (default: int8 for the "
        "classifiers, float32 for next-word, whose tied table the output layer also reads; ignored with "
        "--quantize int8, which quantizes the tables itself)",
    )
    train.add_argument(
        "--quantize",
        choices=["none", "int8"],
        default="none",
        help="int8: dynamic INT8 quantization of the exported graphs for CPU serving (change measured)",
    )
    train.add_argument(
        "--oos-threshold",
        action="store_true",
        help="intent: train without the 'oos' examples and answer 'oos' below a confidence threshold "
        "chosen on validation (default: 'oos' examples train a class of their own, and a threshold on "
        "in-scope confidence chosen on validation catches what resembles no example)",
    )
    train.add_argument(
        "--oos-data",
        type=Path,
        action="append",
        default=[],
        help="intent: extra out-of-scope texts, labelled 'oos' (a share validates, the rest trains unless "
        "--oos-threshold); repeat for several files",
    )
    train.add_argument(
        "--oos-format",
        choices=["text", "csv", "jsonl"],
        help="format of every --oos-data file (default: by suffix, .csv, .jsonl, else text)",
    )
    train.add_argument(
        "--oos-operating-point",
        default=DEFAULT_OPERATING_POINT,
        help="intent: where on the validation trade-off the out-of-scope threshold sits: in-scope-cost=X "
        f"(default {DEFAULT_OPERATING_POINT}: most out-of-scope recall costing at most X of the in-scope "
        "accuracy without a threshold), in-scope-accuracy=X (most out-of-scope recall keeping in-scope "
        "accuracy >= X), oos-recall=X (most in-scope accuracy keeping recall >= X) or balanced (highest mean "
        "of in-scope accuracy and out-of-scope recall)",
    )
    train.add_argument(
        "--embeddings",
        type=Path,
        help="pretrained word vectors to initialise the embeddings: a GloVe, word2vec or fastText text file "
        "(with or without a header line, .gz allowed); sets --embedding-dim to theirs unless given",
    )
    train.add_argument(
        "--freeze-embeddings",
        action="store_true",
        help="keep the pretrained vectors fixed during training (default: fine-tune them)",
    )
    _field_options(train)

    retokenize = commands.add_parser(
        "retokenize",
        help="copy a bundle with a tokenizer that reads raw typed text as its corpus was written "
        "(numbers, contractions, punctuation); same vocabulary and weights",
    )
    _bundle_and_data(retokenize, "the corpus the bundle was trained on")
    retokenize.add_argument("--out", required=True, type=Path, help="the new bundle directory")

    rule = commands.add_parser(
        "oos-rule",
        help="choose an intent bundle's out-of-scope threshold again, at another operating point, on "
        "validation data holding 'oos' examples (the weights stay); rewrites its config.json",
    )
    _bundle_and_data(rule, "validation data (never test data)")
    rule.add_argument("--split", default="validation", help="split file to read from a directory")
    rule.add_argument("--oos-operating-point", required=True, help="as for train")

    evaluate = commands.add_parser("evaluate", help="print held-out metrics of a bundle as JSON")
    _bundle_and_data(evaluate, "held-out data")
    evaluate.add_argument("--split", default="test", help="split file to read from a directory")
    evaluate.add_argument(
        "--spelling",
        choices=("correct", "as-typed"),
        default="correct",
        help="a classifier's words its vocabulary lacks: read as the service does by default, as the word one "
        "typing slip away, or as typed (as RNNSERVE_SPELLING=as-typed serves them)",
    )
    return parser


def _bundle_and_data(parser: argparse.ArgumentParser, data_help: str) -> None:
    """The options of a command that reads a bundle and a dataset."""
    parser.add_argument("--model", required=True, type=Path, help="bundle directory")
    parser.add_argument("--format", required=True, choices=list(FORMATS), dest="data_format")
    parser.add_argument("--data", required=True, type=Path, help=data_help)
    _field_options(parser)


def _field_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-field", default="text", help="csv/jsonl text column")
    parser.add_argument("--label-field", default="label", help="csv/jsonl label column")


OVERRIDES = (
    "cell",
    "embedding_dim",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "dropout",
    "word_dropout",
    "max_length",
    "vocab_size",
    "min_frequency",
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "clip_norm",
    "patience",
    "optimizer",
    "bptt",
    "ema_decay",
    "rdrop",
    "lm_loss",
    "ensemble",
    "bag_members",
    "lookup_tables",
    "sparse_gradients",
    "subwords",
    "seed",
)


def _train(args: argparse.Namespace) -> int:
    from training.pipeline import TrainOptions, train_bundle  # imports torch

    task = Task(args.task)
    out = args.out or Path("models") / task.value / "1"
    options = TrainOptions(
        task=task,
        data_format=args.data_format,
        data=args.data,
        out=out,
        valid_data=args.valid_data,
        name=args.name,
        valid_fraction=args.valid_fraction,
        valid_split=args.valid_split,
        device=args.device,
        text_field=args.text_field,
        label_field=args.label_field,
        run_dir=args.run_dir or Path("runs") / f"{out.parent.name}-{out.name}",
        oos_threshold=args.oos_threshold,
        oos_data=args.oos_data,
        oos_format=args.oos_format,
        oos_operating_point=args.oos_operating_point,
        embeddings=args.embeddings,
        freeze_embeddings=args.freeze_embeddings,
        quantize=args.quantize,
        overrides={key: getattr(args, key) for key in OVERRIDES},
    )
    config = train_bundle(options)
    if config is None:  # another rank of a torchrun launch; rank 0 reports
        return 0
    print(
        json.dumps(
            {
                "bundle": str(out),
                "metrics": config.metrics,
                "export": {"max_abs_diff": config.export["max_abs_diff"]},
            },
            indent=2,
        )
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_bundle

    split = args.split
    examples = read_dataset(
        args.data_format,
        args.data,
        split=split,
        text_field=args.text_field,
        label_field=args.label_field,
    )
    print(json.dumps(evaluate_bundle(args.model, examples, spelling=args.spelling == "correct")))
    return 0


def _oos_rule(args: argparse.Namespace) -> int:
    from training.pipeline import rechoose_out_of_scope

    examples = read_dataset(
        args.data_format, args.data, split=args.split, text_field=args.text_field, label_field=args.label_field
    )
    config = rechoose_out_of_scope(args.model, examples, args.oos_operating_point, str(args.data))
    assert config.out_of_scope is not None
    print(json.dumps({"bundle": str(args.model), "out_of_scope": config.out_of_scope.model_dump(exclude={"curve"})}))
    return 0


def _retokenize(args: argparse.Namespace) -> int:
    from training.retokenize import retokenize

    corpus = read_dataset(args.data_format, args.data, text_field=args.text_field, label_field=args.label_field)
    config = retokenize(args.model, corpus, args.out)
    print(json.dumps({"bundle": str(args.out), "text_conventions": config.text_conventions}))
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m training") -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = _parser(prog).parse_args(argv)
    try:
        commands = {"train": _train, "evaluate": _evaluate, "retokenize": _retokenize, "oos-rule": _oos_rule}
        return commands[args.command](args)
    except (DataError, ExportError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
