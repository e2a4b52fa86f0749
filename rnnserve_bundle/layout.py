"""Where bundles lie and what makes one valid on disk.

A model repository holds `<root>/<name>/<version>/`: the folder names are the bundle's name and
version, as in every model repository (Triton, MLServer, TorchServe), so a bundle can be copied to
a new version or into another repository as it is. The `name`/`version` inside `config.json` record
where it was trained (provenance) and are not used to route requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from rnnserve_bundle.config import (
    CONFIG_FILE,
    MODEL_FILE,
    SPECIAL_TOKENS,
    STEP_MODEL_FILE,
    TOKENIZER_FILE,
    BundleConfig,
    Task,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)


class BundleError(ValueError):
    """A bundle on disk that cannot be served, and why."""


@dataclass(frozen=True, slots=True)
class BundleRef:
    """A bundle's identity in a repository: the names of its two folders."""

    name: str
    version: str
    directory: Path

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"


def find_bundles(root: Path) -> dict[str, BundleRef]:
    """Every `<name>/<version>/` under `root` holding a `config.json`, keyed `name/version`.
    Hidden folders (a bundle being written) and names that are not valid model names are skipped."""
    if not root.is_dir():
        raise FileNotFoundError(f"model repository {root} is not a directory")
    bundles = {}
    for config_path in sorted(root.glob(f"*/*/{CONFIG_FILE}")):
        directory = config_path.parent
        name, version = directory.parent.name, directory.name
        if not (_NAME.match(name) and _NAME.match(version)):
            continue
        ref = BundleRef(name, version, directory)
        bundles[ref.key] = ref
    return bundles


def validate_bundle(directory: Path) -> BundleConfig:
    """The bundle's config, once its files are there and agree with it; otherwise `BundleError`."""
    missing = [f for f in (CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE) if not (directory / f).is_file()]
    if missing:
        raise BundleError(f"{directory}: missing {', '.join(missing)}")
    try:
        config = BundleConfig.load(directory)
    except ValueError as error:  # pydantic's ValidationError and JSON errors are ValueErrors
        raise BundleError(f"{directory / CONFIG_FILE}: {error}") from None
    try:
        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
    except Exception as error:  # the tokenizers library raises plain Exceptions
        raise BundleError(f"{directory / TOKENIZER_FILE}: {error}") from None
    for index, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != index:
            raise BundleError(f"{directory / TOKENIZER_FILE}: {token} must have id {index}")
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise BundleError(
            f"{directory}: the tokenizer has {tokenizer.get_vocab_size()} tokens, the model {config.vocab_size}"
        )
    if (directory / STEP_MODEL_FILE).exists() and config.task is not Task.NEXT_WORD:
        raise BundleError(f"{directory}: {STEP_MODEL_FILE} is only for next-word models")
    return config
