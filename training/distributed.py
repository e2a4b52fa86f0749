"""Data-parallel training under `torchrun` (DistributedDataParallel): one process per device or
CPU worker, each training on its share of every epoch's batches with gradients averaged.

Launched without torchrun (no `WORLD_SIZE` > 1 in the environment) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The one process that logs, writes the run directory and exports the bundle."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def join_world(device_choice: str) -> tuple[World, torch.device]:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA) and pick this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() if device_choice == "auto" else device_choice.startswith("cuda")
    if size <= 1:
        device = torch.device("cuda" if cuda else "cpu") if device_choice == "auto" else torch.device(device_choice)
        return World(), device
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local_rank), device


def leave_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """The module to run forward/backward through: DDP averages gradients across ranks."""
    if not world.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(batches: list[T], world: World) -> list[T]:
    """This rank's batches: every rank gets the same number (DDP needs equal steps), the rest is dropped."""
    if not world.distributed:
        return batches
    usable = len(batches) - len(batches) % world.size
    return batches[world.rank : usable : world.size]
