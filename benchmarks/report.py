"""How every benchmark publishes its figures: printed, and appended to a Markdown file if asked."""

from __future__ import annotations

import statistics
from pathlib import Path


def publish(report: str, write: Path | None) -> None:
    print(report)
    if write is not None:
        with write.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report)


def mean_std(values: list[float], digits: int = 3) -> str:
    """Mean ± sample standard deviation (the value alone for one run)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
