"""Lookup tables trained with sparse gradients (`--sparse-gradients`, bag members).

A bag member's word-pair table has up to 65,536 rows, of which a batch reads a few hundred. With a
dense gradient every step zeroes, clips and updates the whole table; with `nn.Embedding(sparse=True)`
the gradient holds only the rows read, `torch.optim.SparseAdam` updates only those (lazy Adam: the
moments of the other rows wait until they are read again, and the tables get no weight decay), and
the rest of the model keeps AdamW. Both follow the task's one-cycle schedule. Measured in REPORT.md.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler


def set_sparse_tables(model: nn.Module, sparse: bool) -> list[nn.Parameter]:
    """Give every lookup table of the model sparse (or again dense) gradients; returns their weights."""
    tables = [m for m in model.modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)]
    for table in tables:
        table.sparse = sparse
    return [table.weight for table in tables]


class JointOptimizer:
    """SparseAdam for the tables and AdamW for everything else, stepped as one optimizer."""

    def __init__(self, model: nn.Module, tables: list[nn.Parameter], lr: float, weight_decay: float, fused: bool):
        ids = {id(p) for p in tables}
        dense = [p for p in model.parameters() if id(p) not in ids]
        self.parts: list[torch.optim.Optimizer] = [
            torch.optim.AdamW(dense, lr=lr, weight_decay=weight_decay, fused=fused),
            torch.optim.SparseAdam(tables, lr=lr),
        ]

    @property
    def param_groups(self) -> list[dict]:
        return self.parts[0].param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()


class JointSchedule:
    """The schedules of a `JointOptimizer`'s parts, stepped as one."""

    def __init__(self, parts: list[LRScheduler]) -> None:
        self.parts = parts

    def step(self) -> None:
        for part in self.parts:
            part.step()


@torch.no_grad()
def clip_gradients(parameters: list[nn.Parameter], max_norm: float) -> None:
    """`nn.utils.clip_grad_norm_`, which it calls when no gradient is sparse; otherwise (it cannot
    read sparse gradients) the same global norm, over the coalesced rows of each sparse gradient."""
    if not any(p.grad is not None and p.grad.is_sparse for p in parameters):
        nn.utils.clip_grad_norm_(parameters, max_norm)
        return
    grads = []
    for parameter in parameters:
        if parameter.grad is None:
            continue
        if parameter.grad.is_sparse:
            parameter.grad = parameter.grad.coalesce()  # repeated rows summed, as the dense gradient has them
            grads.append(parameter.grad.values())
        else:
            grads.append(parameter.grad)
    if not grads:
        return
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = max_norm / (norm + 1e-6)
    if scale < 1:
        for parameter in parameters:
            if parameter.grad is not None:
                parameter.grad.mul_(scale)
