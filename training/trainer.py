"""The training loop: gradient clipping, early stopping on the validation metric with the best
weights kept, and one of two regimes:

- AdamW with a one-cycle learning-rate schedule over length-bucketed batches of whole examples
  (classifiers; language models with `bptt` 0);
- the classic language-model recipe (pytorch/examples `word_language_model`, Zaremba et al. 2014):
  the training sentences as one continuous stream cut into `batch_size` rows, truncated
  backpropagation through `bptt` steps with the recurrent state carried from window to window
  (so every word is read in context, across sentence boundaries, with no padding), and plain SGD
  whose learning rate is divided by 4 whenever validation does not improve.

Either can validate, keep and export an exponential moving average of the weights (`ema_decay`)."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR, ReduceLROnPlateau
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from rnnserve_bundle.config import PAD_ID
from training.batching import bucket_batches, pad
from training.data import DataError
from training.distributed import World, shard, wrap
from training.metrics import LanguageModelScore, classification_metrics
from training.plots import plot_curves
from training.sparse_tables import JointOptimizer, JointSchedule, clip_gradients, set_sparse_tables

log = logging.getLogger(__name__)


@dataclass
class Hyperparameters:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    clip_norm: float
    patience: int
    seed: int
    word_dropout: float = 0.0
    optimizer: str = "adamw"  # or "sgd": divided by 4 when validation stalls
    bptt: int = 0  # language models: > 0 trains on one continuous stream, windows of this many steps
    ema_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights
    # Classifiers, R-Drop (Liang et al. 2021): > 0 reads each batch twice under independent dropout
    # and adds this weight times the symmetric KL divergence between the two predictions.
    rdrop: float = 0.0
    # Lookup tables with sparse gradients and SparseAdam (`training/sparse_tables.py`); AdamW only,
    # one process (DDP keeps dense gradients).
    sparse_gradients: bool = False
    # Recurrent classifiers with a `language_model` head: > 0 adds this weight times the loss of
    # their states predicting the neighbouring words (`training/auxiliary_lm.py`).
    lm_loss: float = 0.0


@dataclass
class Split:
    """Token ids per example and, for classifiers, label indices (None for a language model)."""

    ids: list[list[int]]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class FitResult:
    best_epoch: int
    best_metrics: dict
    history: list[dict] = field(default_factory=list)
    duration_s: float = 0.0
    kept: str = "last"  # the weights kept: "last" (as trained) or "average" (ema_decay)
    start_state_ends: int = 0  # stream LMs: the sentence ends their start state is the mean state after


def _tensors(ids: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    padded, lengths = pad(ids)
    return torch.from_numpy(padded).to(device), torch.from_numpy(lengths).to(device)


def _lm_targets(ids: torch.Tensor, lengths: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Next-token targets: ids shifted left, `<eos>` after the last real token, pad elsewhere."""
    targets = torch.full_like(ids, PAD_ID)
    targets[:, :-1] = ids[:, 1:]
    targets[torch.arange(ids.size(0), device=ids.device), lengths - 1] = eos_id
    return targets


def _symmetric_kl(doubled: torch.Tensor) -> torch.Tensor:
    """Mean over examples of the symmetric KL divergence between the two halves' predictions."""
    first, second = doubled.log_softmax(dim=1).chunk(2)
    forward = nn.functional.kl_div(first, second, reduction="batchmean", log_target=True)
    backward = nn.functional.kl_div(second, first, reduction="batchmean", log_target=True)
    return (forward + backward) / 2


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        classifier: bool,
        hyper: Hyperparameters,
        device: torch.device,
        eos_id: int,
        unk_id: int,
        world: World | None = None,
    ) -> None:
        self.model = model.to(device)
        self.world = world or World()
        sparse = hyper.sparse_gradients and hyper.optimizer == "adamw" and self.world.size == 1
        if hyper.sparse_gradients and not sparse:
            log.info("sparse gradients need AdamW and one process: the tables train with dense gradients")
        self.tables = set_sparse_tables(self.model, True) if sparse else []
        # Training steps go through DDP when distributed; evaluation uses the plain module
        # (identical weights on every rank), so every rank takes the same early-stopping decision.
        self.trained = wrap(self.model, self.world, device)
        self.classifier = classifier
        self.hyper = hyper
        self.device = device
        self.eos_id = eos_id
        self.unk_id = unk_id
        self.generator = torch.Generator(device=device).manual_seed(hyper.seed)
        self.loss = nn.CrossEntropyLoss(ignore_index=PAD_ID if not classifier else -100)

    def _word_dropout(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Word dropout: replace a share of the real words by `<unk>`, so that the
        model cannot lean on any single word, and it learns what to do with unknown ones."""
        if not self.hyper.word_dropout:
            return input_ids
        draw = torch.rand(input_ids.shape, generator=self.generator, device=input_ids.device)
        return input_ids.masked_fill((draw < self.hyper.word_dropout) & (input_ids != PAD_ID), self.unk_id)

    def _batch_loss(self, ids: list[list[int]], labels: np.ndarray | None) -> tuple[torch.Tensor, int]:
        input_ids, lengths = _tensors(ids, self.device)
        if self.classifier:
            target = torch.from_numpy(labels).to(self.device)
            # R-Drop reads the batch twice in one pass of a doubled batch: dropout masks are drawn
            # per element, so the halves differ as two passes would, at less cost than two passes.
            copies = 2 if self.hyper.rdrop else 1
            words, lengths = input_ids.repeat(copies, 1), lengths.repeat(copies)
            if self.hyper.lm_loss:
                logits, lm_loss = self.trained(self._word_dropout(words), lengths, words)
                loss = self.loss(logits, target.repeat(copies)) + self.hyper.lm_loss * lm_loss
            else:
                logits = self.trained(self._word_dropout(words), lengths)
                loss = self.loss(logits, target.repeat(copies))
            if self.hyper.rdrop:
                loss = loss + self.hyper.rdrop * _symmetric_kl(logits)
            return loss, len(ids)
        logits, _ = self.trained(self._word_dropout(input_ids))
        targets = _lm_targets(input_ids, lengths, self.eos_id)
        return self.loss(logits.reshape(-1, logits.size(-1)), targets.reshape(-1)), int(lengths.sum())

    @torch.no_grad()
    def predict(self, split: Split, batch_size: int = 256, model: nn.Module | None = None) -> np.ndarray:
        """Classifier: the predicted class of each example (by `model`, default the trained one)."""
        model = self.model if model is None else model
        model.eval()
        predictions = np.zeros(len(split), dtype=np.int64)
        for batch in bucket_batches([len(s) for s in split.ids], batch_size, shuffle=False):
            input_ids, lengths = _tensors([split.ids[i] for i in batch], self.device)
            predictions[batch] = model(input_ids, lengths).argmax(dim=1).cpu().numpy()
        return predictions

    @torch.no_grad()
    def evaluate(self, split: Split, batch_size: int = 256, model: nn.Module | None = None) -> dict:
        model = self.model if model is None else model
        model.eval()
        if self.classifier:
            num_classes = model.head.out_features
            return classification_metrics(split.labels, self.predict(split, batch_size, model), num_classes)
        score = LanguageModelScore()
        for batch in bucket_batches([len(s) for s in split.ids], batch_size, shuffle=False):
            input_ids, lengths = _tensors([split.ids[i] for i in batch], self.device)
            logits, _ = model(input_ids, model.initial_state(input_ids.size(0)))
            targets = _lm_targets(input_ids, lengths, self.eos_id)
            real = targets != PAD_ID
            log_probs = torch.log_softmax(logits[real], dim=-1).cpu().numpy()
            score.add(log_probs, targets[real].cpu().numpy())
        return score.result()

    def _validate(self, model: nn.Module, validation: Split, train: Split, result: FitResult, streamed: bool) -> dict:
        """Validation metrics of `model`; a stream-trained LM first learns its start state from the
        training text with these weights (sentences are validated one by one, as they are served).
        The state is a buffer, so the weights kept carry the one they were validated with."""
        if streamed:
            result.start_state_ends = model.learn_start_state(train.ids, self.eos_id)
        return self.evaluate(validation, model=model)

    def _better(self, metrics: dict, best: dict | None) -> bool:
        if best is None:
            return True
        if self.classifier:
            return metrics["accuracy"] > best["accuracy"]
        return metrics["perplexity"] < best["perplexity"]

    def _stream(self, train: Split) -> torch.Tensor:
        """This rank's rows of the training stream: every sentence (from `<bos>`) then `<eos>`, in
        corpus order, cut into `batch_size` rows per rank [rows, columns]."""
        tokens = [token for ids in train.ids for token in (*ids, self.eos_id)]
        rows = self.hyper.batch_size * self.world.size
        columns = len(tokens) // rows
        if columns < 2:
            raise DataError(
                f"the training text ({len(tokens)} tokens) is too short to stream in {rows} rows: "
                "lower --batch-size, or train on whole sentences with --bptt 0"
            )
        stream = torch.tensor(tokens[: rows * columns], dtype=torch.long).view(rows, columns)
        mine = slice(self.world.rank * self.hyper.batch_size, (self.world.rank + 1) * self.hyper.batch_size)
        return stream[mine].to(self.device)

    def _stream_windows(self, stream: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, stream.size(1) - 1, self.hyper.bptt):
            targets = stream[:, start + 1 : start + 1 + self.hyper.bptt]
            yield stream[:, start : start + targets.size(1)], targets

    def _optimizer(
        self, steps_per_epoch: int
    ) -> tuple[torch.optim.Optimizer | JointOptimizer, LRScheduler | JointSchedule]:
        hyper = self.hyper
        fused = self.device.type in ("cpu", "cuda")
        if self.tables:
            joint = JointOptimizer(self.model, self.tables, hyper.learning_rate, hyper.weight_decay, fused)
            return joint, JointSchedule([self._one_cycle(part, steps_per_epoch) for part in joint.parts])
        parameters = self.model.parameters()
        if hyper.optimizer == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                parameters, lr=hyper.learning_rate, weight_decay=hyper.weight_decay
            )
            mode = "max" if self.classifier else "min"
            return optimizer, ReduceLROnPlateau(optimizer, mode=mode, factor=0.25, patience=0)
        # The fused kernel is the same update in one pass over each tensor; the separate passes made
        # the bag member's large table the slowest part of an intent training (REPORT.md).
        optimizer = torch.optim.AdamW(parameters, lr=hyper.learning_rate, weight_decay=hyper.weight_decay, fused=fused)
        return optimizer, self._one_cycle(optimizer, steps_per_epoch)

    def _one_cycle(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> OneCycleLR:
        return OneCycleLR(
            optimizer,
            max_lr=self.hyper.learning_rate,
            total_steps=steps_per_epoch * self.hyper.epochs,
            pct_start=0.1,
            anneal_strategy="cos",
        )

    def _epoch_steps(
        self, train: Split, epoch: int, stream: torch.Tensor | None, steps: int
    ) -> Iterator[tuple[torch.Tensor, int]]:
        """(loss, items) for each training step of one epoch: windows of the stream, or batches."""
        if stream is not None:
            state = None
            for ids, targets in self._stream_windows(stream):
                if state is not None:  # carried across windows, not backpropagated through
                    state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
                logits, state = self.trained(self._word_dropout(ids), state)
                yield self.loss(logits.reshape(-1, logits.size(-1)), targets.reshape(-1)), targets.numel()
            return
        batches = bucket_batches(
            [len(s) for s in train.ids], self.hyper.batch_size, shuffle=True, seed=self.hyper.seed + epoch
        )
        for batch in shard(list(batches), self.world)[:steps]:
            labels = train.labels[batch] if train.labels is not None else None
            yield self._batch_loss([train.ids[i] for i in batch], labels)

    def fit(self, train: Split, validation: Split, run_dir: Path | None = None) -> FitResult:
        hyper = self.hyper
        stream = self._stream(train) if hyper.bptt and not self.classifier else None
        if stream is not None:
            steps = math.ceil((stream.size(1) - 1) / hyper.bptt)
        else:
            # With several ranks each takes its share of the batches (the effective batch is batch_size x ranks).
            steps = max(1, math.ceil(len(train) / hyper.batch_size) // self.world.size)
        optimizer, schedule = self._optimizer(steps)
        per_step = not isinstance(schedule, ReduceLROnPlateau)
        # An average of the weights along the last steps generalises better than the last weights
        # (Polyak averaging; the averaged SGD of AWD-LSTM, SWA). With `ema_decay` the average is
        # what is validated, what early stopping and the plateau schedule see and what is kept,
        # unless at the end the last weights validate better: a run too short for the average's
        # horizon (an average over about 1 / (1 - ema_decay) steps) keeps its trained weights.
        averaged = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(hyper.ema_decay)) if hyper.ema_decay else None
        )
        result = FitResult(best_epoch=0, best_metrics={})
        best_state, best_metrics, stale = None, None, 0
        started = time.perf_counter()
        for epoch in range(1, hyper.epochs + 1):
            self.model.train()
            total_loss, total_items, epoch_start = 0.0, 0, time.perf_counter()
            bar = tqdm(
                self._epoch_steps(train, epoch, stream, steps),
                total=steps,
                desc=f"epoch {epoch}",
                leave=False,
                mininterval=1.0,
                disable=None if self.world.is_main else True,
            )
            for loss, items in bar:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip_gradients(list(self.model.parameters()), hyper.clip_norm)
                optimizer.step()
                if per_step:
                    schedule.step()
                if averaged is not None:
                    averaged.update_parameters(self.model)
                total_loss += loss.item() * items
                total_items += items
                rate = total_items / max(1e-9, time.perf_counter() - epoch_start)
                bar.set_postfix(loss=f"{total_loss / total_items:.4f}", items_per_s=f"{rate:.0f}")
            validated = averaged.module if averaged is not None else self.model
            metrics = self._validate(validated, validation, train, result, stream is not None)
            learning_rate = optimizer.param_groups[0]["lr"]
            entry = {
                "epoch": epoch,
                "train_loss": total_loss / max(1, total_items),
                "learning_rate": learning_rate,
                "seconds": time.perf_counter() - epoch_start,
                "validation": metrics,
            }
            result.history.append(entry)
            log.log(
                logging.INFO if self.world.is_main else logging.DEBUG,
                "epoch %d: train loss %.4f, validation%s %s",
                epoch,
                entry["train_loss"],
                " (weights averaged)" if averaged is not None else "",
                {k: round(v, 4) for k, v in metrics.items()},
            )
            if self._better(metrics, best_metrics):
                best_state = copy.deepcopy(validated.state_dict())
                best_metrics, result.best_epoch, stale = metrics, epoch, 0
            else:
                stale += 1
                if stale >= hyper.patience:
                    log.info("early stop: no validation improvement for %d epoch(s)", stale)
                    break
            if not per_step:
                schedule.step(metrics["accuracy" if self.classifier else "perplexity"])
        if averaged is not None:
            last = self._validate(self.model, validation, train, result, stream is not None)
            result.kept = "average"
            if self._better(last, best_metrics):
                log.info("the last weights validate better than their average: keeping them")
                best_state, best_metrics, result.kept = copy.deepcopy(self.model.state_dict()), last, "last"
                result.best_epoch = len(result.history)
        self.model.load_state_dict(best_state)
        self.model.eval()
        if self.tables:  # trained: the export reads the tables as any others
            set_sparse_tables(self.model, False)
        result.best_metrics = best_metrics or {}
        result.duration_s = time.perf_counter() - started
        if run_dir is not None and self.world.is_main:
            write_history(run_dir, result, hyper)
        return result


def write_history(run_dir: Path, result: FitResult, hyper: Hyperparameters) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "hyperparameters": asdict(hyper),
        "best_epoch": result.best_epoch,
        "best_validation": result.best_metrics,
        "kept_weights": result.kept,
        "history": result.history,
    }
    (run_dir / "history.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    plot_curves(run_dir, result.history, "accuracy" if "accuracy" in result.best_metrics else "perplexity")
