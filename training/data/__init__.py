"""Dataset readers and splitting."""

from training.data.readers import (
    FORMATS,
    OUT_OF_SCOPE,
    DataError,
    Example,
    own_validation_split,
    read_dataset,
    write_csv,
)
from training.data.split import carve_validation

__all__ = [
    "FORMATS",
    "OUT_OF_SCOPE",
    "DataError",
    "Example",
    "carve_validation",
    "own_validation_split",
    "read_dataset",
    "write_csv",
]
