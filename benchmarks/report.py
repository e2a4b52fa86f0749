"""How every benchmark publishes its figures: printed, and appended to a Markdown file if asked."""

from __future__ import annotations

from pathlib import Path


def publish(report: str, write: Path | None) -> None:
    print(report)
    if write is not None:
        with write.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report)
