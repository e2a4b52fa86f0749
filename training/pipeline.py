"""`train`: data → tokenizer → model → training → ONNX export → verified bundle on disk."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import tokenizers
import torch

from rnnserve_bundle.config import (
    EOS_TOKEN,
    TOKENIZER_FILE,
    UNK_TOKEN,
    Architecture,
    BundleConfig,
    Calibration,
    OutOfScope,
    Task,
)
from rnnserve_bundle.cpus import available_cores
from rnnserve_bundle.encoder import TextEncoder
from rnnserve_bundle.tensors import softmax
from training.auxiliary_lm import LanguageModelHead, predicted_words
from training.calibration import expected_calibration_error, fit_temperature
from training.data import OUT_OF_SCOPE, DataError, Example, carve_validation, own_validation_split, read_dataset
from training.data.split import carve_sentence_validation
from training.defaults import BAG_RECIPE, TASK_DEFAULTS
from training.distributed import World, join_world, leave_world
from training.embeddings import load_pretrained, vector_dimension
from training.evaluate import classifier_logits, evaluate_bundle, label_indices
from training.export import export_classifier, export_language_model, mixed_length_sample
from training.lookup_tables import compact_bundle
from training.model import (
    BagClassifier,
    EnsembleClassifier,
    RNNClassifier,
    RNNLanguageModel,
    bigram_table_size,
    count_parameters,
)
from training.out_of_scope import DEFAULT_OPERATING_POINT, OperatingPoint, choose_rule
from training.plots import confusion_matrix, plot_confusion
from training.quantize import quantize_bundle
from training.subwords import SubwordEmbedding, fold_subwords, ngram_ids, ngram_table_size
from training.text_conventions import detect
from training.tokenizer import build_tokenizer
from training.trainer import FitResult, Hyperparameters, Split, Trainer

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    task: Task
    data_format: str
    data: Path
    out: Path
    valid_data: Path | None = None
    name: str | None = None
    valid_fraction: float = 0.1
    valid_split: str = "auto"  # random, sentences (SST-style phrases grouped by sentence), auto
    device: str = "auto"
    text_field: str = "text"
    label_field: str = "label"
    run_dir: Path | None = None
    oos_threshold: bool = False
    oos_data: list[Path] = field(default_factory=list)  # extra out-of-scope texts (label forced to `oos`)
    oos_format: str | None = None  # default: by each file's suffix (.csv, .jsonl, else text)
    oos_operating_point: str = DEFAULT_OPERATING_POINT
    quantize: str = "none"
    embeddings: Path | None = None  # pretrained word vectors (GloVe, word2vec, fastText text files)
    freeze_embeddings: bool = False
    overrides: dict = field(default_factory=dict)  # any key of TASK_DEFAULTS


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _read(options: TrainOptions, path: Path, split: str) -> list[Example]:
    return read_dataset(
        options.data_format,
        path,
        split=split,
        text_field=options.text_field,
        label_field=options.label_field,
    )


def load_splits(options: TrainOptions, seed: int) -> tuple[list[Example], list[Example], str]:
    train, validation, source = _main_splits(options, seed)
    for path in options.oos_data:
        # Out-of-scope texts from elsewhere: a seeded share validates, the rest trains (unless
        # --oos-threshold, which keeps out-of-scope examples out of training).
        fmt = options.oos_format or {".csv": "csv", ".jsonl": "jsonl"}.get(path.suffix, "text")
        texts = read_dataset(fmt, path, split="train", text_field=options.text_field, label_field="")
        oos = [Example(e.text, OUT_OF_SCOPE) for e in texts]
        oos_train, oos_valid = carve_validation(oos, options.valid_fraction, seed)
        if not oos_valid:
            raise DataError(f"{path}: too few out-of-scope examples to hold some out")
        train, validation = train + oos_train, validation + oos_valid
        source += f"; out-of-scope: {options.valid_fraction:.0%} of {path}, seed {seed}"
    return train, validation, source


def _main_splits(options: TrainOptions, seed: int) -> tuple[list[Example], list[Example], str]:
    examples = _read(options, options.data, "train")
    if options.valid_data is not None:
        # A directory, or a file holding several splits, gives its validation split.
        split = "validation" if options.valid_data.is_dir() or options.data_format == "clinc150" else "train"
        return examples, _read(options, options.valid_data, split), str(options.valid_data)
    if options.valid_split == "auto" and own_validation_split(options.data_format, options.data):
        # A CLINC150 file carries its own validation split: train on all of `train`, validate
        # (and choose the out-of-scope threshold) on `val`, as the benchmark's protocol does.
        return examples, _read(options, options.data, "validation"), f"{options.data}: its own validation split"
    by_sentence = options.valid_split == "sentences" or (
        options.valid_split == "auto" and options.data_format == "sst2"
    )
    if by_sentence:
        # SST-2's training lines are phrases of the same sentences: a random split would validate on
        # phrases of training sentences. Hold out whole sentences with all their phrases instead.
        train, validation = carve_sentence_validation(examples, options.valid_fraction, seed)
        source = (
            f"{options.valid_fraction:.0%} of the whole sentences, stratified, seed {seed}; "
            "their phrases of 3+ words removed from training"
        )
    else:
        train, validation = carve_validation(examples, options.valid_fraction, seed)
        source = f"{options.valid_fraction:.0%} of the training data, stratified, seed {seed}"
    if not validation:
        raise DataError(f"{options.data}: too few examples to hold out a validation split")
    return train, validation, source


def calibrate(directory: Path, config: BundleConfig, examples: list[Example]) -> Calibration:
    """Fit the temperature on the exported graph's validation logits; ECE before and after."""
    truth = label_indices(config.labels, examples)
    logits = classifier_logits(directory, config, [e.text for e in examples])
    temperature = fit_temperature(logits, truth)
    return Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(softmax(logits), truth),
        ece_after=expected_calibration_error(softmax(logits / temperature), truth),
        fitted_on="validation split (the same one the metrics are reported on)",
    )


def choose_out_of_scope(
    directory: Path, config: BundleConfig, examples: list[Example], method: str, point: OperatingPoint
) -> OutOfScope:
    """The out-of-scope rule, chosen on the exported graph's calibrated validation probabilities."""
    labels = config.labels
    oos_index = labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in labels else len(labels)
    truth = label_indices(labels if OUT_OF_SCOPE in labels else [*labels, OUT_OF_SCOPE], examples)
    logits = classifier_logits(directory, config, [e.text for e in examples])
    return choose_rule(softmax(logits / config.temperature), labels, truth, oos_index, method, point)


def rechoose_out_of_scope(directory: Path, examples: list[Example], point_text: str, source: str) -> BundleConfig:
    """Move a trained intent bundle's out-of-scope threshold to another operating point, chosen on
    `examples` (validation data with `oos` examples); the validation metrics follow."""
    config = BundleConfig.load(directory)
    if config.out_of_scope is None:
        raise DataError(f"{directory}: the bundle has no out-of-scope rule to move")
    point = OperatingPoint.parse(point_text)
    if not any(e.label == OUT_OF_SCOPE for e in examples):
        raise DataError(f"{source}: no out-of-scope examples (label '{OUT_OF_SCOPE}') to choose on")
    config.out_of_scope = choose_out_of_scope(directory, config, examples, config.out_of_scope.method, point)
    config.metrics = {"validation": evaluate_bundle(directory, examples, config)}
    config.data["out_of_scope_rule_chosen_on"] = source
    config.save(directory)
    return config


def train_bundle(options: TrainOptions) -> BundleConfig | None:
    """Train and write the bundle; under torchrun only rank 0 exports and returns the config."""
    world, device = join_world(options.device)
    try:
        return _train_bundle(options, world, device)
    finally:
        leave_world(world)


def _fit_record(fit: FitResult) -> dict:
    record = {"best_epoch": fit.best_epoch, "epochs_run": len(fit.history), "kept_weights": fit.kept}
    if fit.start_state_ends:
        record["start_state"] = f"mean state after <eos> at {fit.start_state_ends} sentence ends"
    return record | {"duration_s": round(fit.duration_s, 1)}


def _train_bundle(options: TrainOptions, world: World, device: torch.device) -> BundleConfig | None:
    settings = {
        **TASK_DEFAULTS[options.task],
        **{k: v for k, v in options.overrides.items() if v is not None},
    }
    seed = settings.get("seed", 13)
    recurrent, bags = settings["ensemble"], settings["bag_members"]
    if recurrent < 0 or bags < 0 or recurrent + bags < 1:
        raise DataError("--ensemble and --bag-members take numbers of models >= 0, together at least one")
    if (recurrent > 1 or bags > 0) and not options.task.is_classifier:
        raise DataError("--ensemble above 1 and --bag-members above 0 are for classifiers only")
    if not 0 <= settings["rdrop"] < math.inf or (settings["rdrop"] > 0 and not options.task.is_classifier):
        raise DataError("--rdrop takes a weight >= 0, and above 0 only for classifiers")
    if not 0 <= settings["lm_loss"] < math.inf or (settings["lm_loss"] > 0 and not options.task.is_classifier):
        # A language model's whole loss is already this one.
        raise DataError("--lm-loss takes a weight >= 0, and above 0 only for classifiers")
    if options.overrides.get("subwords") and not bags:
        # Also next-word's case, which has no bag members (its table is also its output layer).
        raise DataError("--subwords trains the bag members' word vectors, and this run has none (--bag-members 0)")
    if options.embeddings is not None and options.overrides.get("embedding_dim") is None:
        settings["embedding_dim"] = vector_dimension(options.embeddings)  # the vectors' own size
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(available_cores())

    OperatingPoint.parse(options.oos_operating_point)  # a typo fails now, not after training
    train_examples, valid_examples, valid_source = load_splits(options, seed)
    classifier = options.task.is_classifier
    if classifier:
        if any(e.label is None for e in train_examples):
            raise DataError(f"{options.data}: the {options.task.value} task needs labelled data")
        all_valid_examples = valid_examples
        if options.oos_threshold:
            # Out-of-scope by threshold: the model never sees `oos` in training; the validation
            # split keeps its `oos` examples to choose the threshold.
            train_examples = [e for e in train_examples if e.label != OUT_OF_SCOPE]
            valid_examples = [e for e in valid_examples if e.label != OUT_OF_SCOPE]
            if len(valid_examples) == len(all_valid_examples):
                raise DataError("--oos-threshold needs out-of-scope examples (label 'oos') in the validation data")
        labels = sorted({e.label for e in train_examples})
        if len(labels) < 2:
            raise DataError(f"{options.data}: need at least two labels, found {labels}")
        unknown = sorted({e.label for e in valid_examples} - set(labels))
        if unknown:
            raise DataError(f"validation labels not seen in training: {', '.join(unknown[:10])}")
    else:
        labels, all_valid_examples = [], valid_examples
    log.info("data: %d training and %d validation examples", len(train_examples), len(valid_examples))

    conventions = detect((e.text for e in train_examples), split_punctuation=classifier)
    tokenizer = build_tokenizer(
        (e.text for e in train_examples),
        options.task,
        settings["vocab_size"],
        settings["min_frequency"],
        conventions,
    )
    max_length = settings["max_length"]
    # Language-model training reads whole sentences up to max_length from their start.
    encoder = TextEncoder(tokenizer, max_length, keep_tail=False)

    def split_of(examples: list[Example]) -> Split:
        ids = [e.ids for e in encoder.encode([x.text for x in examples])]
        if not classifier:
            return Split(ids)
        index = {label: i for i, label in enumerate(labels)}
        return Split(ids, np.array([index[e.label] for e in examples], dtype=np.int64))

    train_split, valid_split = split_of(train_examples), split_of(valid_examples)
    arch = Architecture(
        cell=settings["cell"],
        embedding_dim=settings["embedding_dim"],
        hidden_size=settings["hidden_size"],
        num_layers=settings["num_layers"],
        bidirectional=settings["bidirectional"] and classifier,
        dropout=settings["dropout"],
        tied_embeddings=not classifier and settings["embedding_dim"] == settings["hidden_size"],
    )
    vocab_size = tokenizer.get_vocab_size()
    hyper = Hyperparameters(
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        clip_norm=settings["clip_norm"],
        patience=settings["patience"],
        seed=seed,
        word_dropout=settings["word_dropout"],
        optimizer=settings["optimizer"],
        bptt=settings["bptt"],
        ema_decay=settings["ema_decay"],
        rdrop=settings["rdrop"],
        lm_loss=settings["lm_loss"],
    )
    members = recurrent + bags
    # A bag's own schedule, except where the user set one for every member.
    bag_recipe = {key: value for key, value in BAG_RECIPE.items() if options.overrides.get(key) is None}
    if bags:
        arch.bigram_buckets = bigram_table_size(train_split.ids)
    subwords = bool(settings["subwords"]) and bags > 0  # on by default for intents, which may have no bag
    if subwords:
        vocab = tokenizer.get_vocab()
        arch.ngram_buckets = ngram_table_size(vocab)
        ngrams = ngram_ids(vocab, arch.ngram_buckets)
    if settings["lm_loss"]:
        lm_words = predicted_words(train_split.ids, vocab_size)
    models, fits, embeddings = [], [], None
    for member in range(members):
        # Members differ by seed (initialisation, batch order, word dropout); all validate on the
        # same split, so that the ensemble's validation figures mean what one model's do.
        torch.manual_seed(seed + member)
        if member >= recurrent:
            model = BagClassifier(vocab_size, arch.embedding_dim, arch.bigram_buckets, len(labels), arch.dropout)
        elif classifier:
            model = RNNClassifier(arch, vocab_size, len(labels))
            if settings["lm_loss"]:
                model.language_model = LanguageModelHead(
                    arch.hidden_size, arch.embedding_dim, arch.bidirectional, lm_words, vocab_size, arch.dropout
                )
        else:
            model = RNNLanguageModel(arch, vocab_size)
        if options.embeddings is not None:
            embeddings = load_pretrained(
                model.embedding, tokenizer.get_vocab(), options.embeddings, trainable=not options.freeze_embeddings
            )
        if subwords and member >= recurrent:
            model.embedding = SubwordEmbedding(model.embedding, ngrams, arch.ngram_buckets)
        log.info(
            "model %d of %d: %s, %d parameters, vocabulary %d",
            member + 1,
            members,
            arch.cell if member < recurrent else "bag of words and bigrams",
            count_parameters(model),
            vocab_size,
        )
        bag = (
            {**bag_recipe, "sparse_gradients": bool(settings["sparse_gradients"]), "lm_loss": 0.0}
            if member >= recurrent
            else {}
        )
        member_hyper = replace(hyper, seed=seed + member, **bag)
        trainer = Trainer(
            model,
            classifier,
            member_hyper,
            device,
            eos_id=tokenizer.token_to_id(EOS_TOKEN),
            unk_id=tokenizer.token_to_id(UNK_TOKEN),
            world=world,
        )
        run_dir = options.run_dir
        if members > 1 and run_dir is not None:
            run_dir = run_dir / f"member-{member + 1}"
        fits.append(trainer.fit(train_split, valid_split, run_dir))
        if isinstance(trainer.model, RNNClassifier):
            trainer.model.language_model = None  # training only: not counted, not exported
        models.append(trainer.model)
    if not world.is_main:
        return None  # the weights are the same on every rank; rank 0 exports them
    model = models[0] if members == 1 else EnsembleClassifier(models)
    fold_subwords(model)  # before the count: `parameters` is what the graph serves, not the n-gram table
    arch.members, arch.bag_members, arch.parameters = members, bags, count_parameters(model)
    if classifier and options.run_dir is not None and valid_split.labels is not None:
        matrix = confusion_matrix(valid_split.labels, trainer.predict(valid_split, model=model), len(labels))
        record = {"labels": labels, "true_by_predicted": matrix.tolist()}
        (options.run_dir / "confusion.json").write_text(json.dumps(record), encoding="utf-8")
        plot_confusion(options.run_dir, labels, matrix)
    model = model.cpu()

    out = options.out
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        tokenizer.save(str(staging / TOKENIZER_FILE))
        sample = mixed_length_sample(valid_split.ids)
        export_report = (
            export_classifier(model, staging, sample) if classifier else export_language_model(model, staging, sample)
        )
        if settings["lookup_tables"] == "int8" and options.quantize != "int8":
            # Before calibration and the out-of-scope rule, so that both read the graph that ships.
            export_report["lookup_tables"] = compact_bundle(staging, sample)
        config = BundleConfig(
            name=options.name or out.parent.name,
            version=out.name,
            task=options.task,
            architecture=arch,
            labels=labels,
            max_sequence_length=max_length,
            vocab_size=vocab_size,
            export=export_report,
            data={
                "format": options.data_format,
                "path": str(options.data),
                "sha256": _fingerprint(options.data),
                "out_of_scope_data": [{"path": str(p), "sha256": _fingerprint(p)} for p in options.oos_data],
                "train_examples": len(train_examples),
                "validation_examples": len(valid_examples),
                "validation_source": valid_source,
            },
            training={
                "hyperparameters": settings,
                "device": str(device),
                "processes": world.size,
                # An ensemble records each member's run, and the time of all of them.
                **(_fit_record(fits[0]) if members == 1 else {"members": [_fit_record(fit) for fit in fits]}),
                "duration_s": round(sum(fit.duration_s for fit in fits), 1),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            embeddings=embeddings.as_dict() if embeddings is not None else None,
            text_conventions=conventions.as_dict(),
            versions={
                "torch": torch.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
                "tokenizers": tokenizers.__version__,
                "python": platform.python_version(),
            },
        )
        config.save(staging)
        if classifier:
            config.calibration = calibrate(staging, config, valid_examples)
            if options.oos_threshold or OUT_OF_SCOPE in labels:
                # Out-of-scope examples as a class of their own still leave requests that resemble
                # no training example: the threshold on in-scope confidence catches those too.
                method = "threshold" if options.oos_threshold else "class+threshold"
                point = OperatingPoint.parse(options.oos_operating_point)
                config.out_of_scope = choose_out_of_scope(staging, config, all_valid_examples, method, point)
            config.save(staging)
        # The held-out metrics are measured on the exported graph, as the service will run it.
        config.metrics = {"validation": evaluate_bundle(staging, all_valid_examples)}
        if options.quantize == "int8":
            config.quantization = quantize_bundle(staging, sample)
            fp32, int8 = config.metrics["validation"], evaluate_bundle(staging, all_valid_examples)
            config.quantization["validation_change"] = {
                key: int8[key] - fp32[key] for key in int8 if isinstance(int8[key], float) and key in fp32
            }
            config.metrics = {"validation": int8, "validation_fp32": fp32}
        config.save(staging)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return config
