"""Dataset readers and splitting."""

from training.data.readers import FORMATS, DataError, Example, read_dataset
from training.data.split import carve_validation

__all__ = ["FORMATS", "DataError", "Example", "carve_validation", "read_dataset"]
