"""The model repository: `<root>/<name>/<version>/` bundles, loaded onto ONNX Runtime."""

from __future__ import annotations

import logging
from pathlib import Path

from service.bundle import CONFIG_FILE, BundleConfig
from service.errors import ModelNotFound
from service.metrics import Metrics
from service.served_model import ServedModel
from service.settings import Settings

log = logging.getLogger(__name__)


def version_key(version: str) -> tuple[int, int, str]:
    """Numeric versions order numerically and rank above named ones."""
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


class ModelRepository:
    def __init__(self, root: Path, settings: Settings, metrics: Metrics) -> None:
        self.root = root
        self._settings = settings
        self._metrics = metrics
        self._models: dict[str, dict[str, ServedModel]] = {}
        self.failures: dict[str, str] = {}

    def load_all(self) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"model repository {self.root} is not a directory")
        for config_path in sorted(self.root.glob(f"*/*/{CONFIG_FILE}")):
            directory = config_path.parent
            if directory.name.startswith(".") or directory.parent.name.startswith("."):
                continue  # a bundle being written
            key = f"{directory.parent.name}/{directory.name}"
            try:
                model = self._load(directory)
            except Exception as error:  # one broken bundle must not take the others down
                log.error("model %s failed to load: %s", key, error)
                self.failures[key] = f"{type(error).__name__}: {error}"
                continue
            self._models.setdefault(model.name, {})[model.version] = model
            log.info("loaded %s (%s) on %s", key, model.config.task.value, model.provider)
        self._metrics.models_loaded.set(sum(len(v) for v in self._models.values()))

    def _load(self, directory: Path) -> ServedModel:
        config = BundleConfig.load(directory)
        if config.name != directory.parent.name or config.version != directory.name:
            raise ValueError(
                f"config.json names {config.name}/{config.version}, but the bundle lies at "
                f"{directory.parent.name}/{directory.name}"
            )
        model = ServedModel(directory, config, self._settings, self._metrics)
        model.warm_up()
        self._metrics.execution_provider.labels(model.name, model.provider).set(1)
        return model

    def start(self) -> None:
        for model in self.all():
            model.start()

    async def close(self) -> None:
        for model in self.all():
            await model.close()

    def all(self) -> list[ServedModel]:
        return [m for versions in self._models.values() for m in versions.values()]

    def versions(self, name: str) -> list[str]:
        return sorted(self._models.get(name, {}), key=version_key)

    def get(self, name: str, version: str | None = None) -> ServedModel:
        versions = self._models.get(name)
        if not versions:
            known = ", ".join(sorted(self._models)) or "none"
            raise ModelNotFound(f"no model named {name!r} (loaded: {known})")
        if version is None:
            return versions[max(versions, key=version_key)]
        if version not in versions:
            raise ModelNotFound(
                f"model {name!r} has no version {version!r} (versions: {', '.join(sorted(versions))})"
            )
        return versions[version]
