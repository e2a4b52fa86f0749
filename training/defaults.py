"""Per-task defaults: what a user gets when they pass only --task, --format and --data."""

from __future__ import annotations

from rnnserve_bundle.config import Task

TASK_DEFAULTS: dict[Task, dict] = {
    Task.SENTIMENT: {
        "cell": "lstm",
        "embedding_dim": 128,
        "hidden_size": 128,
        "num_layers": 1,
        "bidirectional": True,
        "dropout": 0.4,
        "word_dropout": 0.0,
        "max_length": 64,
        "vocab_size": 12000,
        "min_frequency": 2,
        "epochs": 6,
        "batch_size": 64,
        "learning_rate": 2e-3,
        "weight_decay": 1e-4,
        "clip_norm": 1.0,
        "patience": 2,
        "optimizer": "adamw",
        "bptt": 0,
        "ema_decay": 0.0,
        "rdrop": 0.0,
        "lm_loss": 0.0,
        "ensemble": 1,
        "bag_members": 0,
        # The word table is most of the graph; as int8 rows it validated the same (REPORT.md).
        "lookup_tables": "int8",
        "sparse_gradients": False,
        "subwords": False,
    },
    Task.INTENT: {
        "cell": "lstm",
        "embedding_dim": 128,
        "hidden_size": 128,
        "num_layers": 1,
        "bidirectional": True,
        "dropout": 0.3,
        # Whole words replaced by <unk> in training: intents are told apart by a few words, and
        # without it the model memorises them (measured in REPORT.md). It makes each epoch
        # noisier, hence twice the epochs.
        "word_dropout": 0.15,
        "max_length": 48,
        "vocab_size": 12000,
        "min_frequency": 1,
        "epochs": 20,
        "batch_size": 32,
        "learning_rate": 2e-3,
        "weight_decay": 1e-4,
        "clip_norm": 1.0,
        "patience": 4,
        "optimizer": "adamw",
        "bptt": 0,
        "ema_decay": 0.0,
        "rdrop": 0.0,
        # Off: the auxiliary language-model loss (`--lm-loss 0.5`) lifts one BiLSTM by about half a
        # point on BANKING77, but not this ensemble, at 2.6 times a member's training time (REPORT.md).
        "lm_loss": 0.0,
        # Three models from successive seeds, served as one graph: fine-grained intents confuse
        # neighbours, and the members err on different ones (measured in REPORT.md).
        "ensemble": 3,
        # And one bag of word and bigram vectors (fastText's classifier): alone it validates about
        # as well as the three recurrent members together, and its errors are others' (REPORT.md).
        "bag_members": 1,
        # Four members' word tables and the bag's word-pair table are nearly all of the graph:
        # stored as int8 with a scale per row they take a quarter of the bytes, and the measured
        # answers do not move (REPORT.md; training/lookup_tables.py).
        "lookup_tables": "int8",
        # Off: inside the default ensemble it validated no better on BANKING77, and it saves minutes
        # of training at most (REPORT.md, "Not yet done").
        "sparse_gradients": False,
        # The bag's word vectors trained with their character n-grams' (fastText's subwords): rare
        # words of a user's file share what `transfer`, `transfers` teach (REPORT.md).
        "subwords": True,
    },
    Task.NEXT_WORD: {
        "cell": "lstm",
        "embedding_dim": 200,
        "hidden_size": 200,
        "num_layers": 2,
        "bidirectional": False,
        "dropout": 0.4,
        "word_dropout": 0.0,
        "max_length": 64,
        "vocab_size": 10000,
        "min_frequency": 1,
        # The classic recipe (pytorch/examples word_language_model): one continuous stream with the
        # state carried across windows of 35 steps, SGD at 20 divided by 4 on a plateau, clipping
        # 0.25; and, as in AWD-LSTM, an average of the weights is what is kept: SGD at 20 wanders
        # around a minimum that its average comes much closer to. Measured in REPORT.md.
        "epochs": 30,
        "batch_size": 20,
        "learning_rate": 20.0,
        "weight_decay": 0.0,
        "clip_norm": 0.25,
        "patience": 3,
        "optimizer": "sgd",
        "bptt": 35,
        "ema_decay": 0.999,
        "rdrop": 0.0,
        "lm_loss": 0.0,
        "ensemble": 1,
        "bag_members": 0,
        # The tied embedding is also the output layer's weight: no table that only lookups read.
        "lookup_tables": "float32",
        "sparse_gradients": False,
        "subwords": False,
    },
}

# Bag-of-words-and-bigrams ensemble members (`--bag-members`) train on their own schedule, whatever
# the task's: a linear model over averaged vectors learns more slowly than the recurrent members
# and on BANKING77 gained most in the one-cycle schedule's annealed end, which the task's patience
# of 4 cut off; where it peaks early (SNIPS: epoch 3) a patience of 10 still ends the run soon
# after (measured in REPORT.md).
BAG_RECIPE: dict = {"epochs": 30, "learning_rate": 3e-3, "patience": 10}
