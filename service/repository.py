"""The model repository: `<root>/<name>/<version>/` bundles, loaded onto ONNX Runtime.

`load_all` runs at start-up; `reload` rescans the directory while serving: new and changed bundles
are loaded off the event loop and swapped in atomically, removed ones are taken out of routing and
closed once their in-flight requests are answered. A bundle that fails to load is reported and, if
an earlier copy of it was serving, that copy keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from service.bundle import CONFIG_FILE, BundleConfig
from service.errors import ModelNotFound
from service.metrics import Metrics
from service.served_model import ServedModel
from service.settings import Settings

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


def version_key(version: str) -> tuple[int, int, str]:
    """Numeric versions order numerically and rank above named ones."""
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


def fingerprint(directory: Path) -> Fingerprint:
    """Names, sizes and modification times of a bundle's files: changes when any file does."""
    entries = []
    for file in sorted(directory.iterdir()):
        if file.is_file():
            stat = file.stat()
            entries.append((file.name, stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class ModelRepository:
    def __init__(self, root: Path, settings: Settings, metrics: Metrics) -> None:
        self.root = root
        self._settings = settings
        self._metrics = metrics
        self._models: dict[str, dict[str, ServedModel]] = {}
        self._fingerprints: dict[str, Fingerprint] = {}
        self.failures: dict[str, str] = {}
        self._reload_lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()

    def _bundles(self) -> dict[str, Path]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"model repository {self.root} is not a directory")
        bundles = {}
        for config_path in sorted(self.root.glob(f"*/*/{CONFIG_FILE}")):
            directory = config_path.parent
            if directory.name.startswith(".") or directory.parent.name.startswith("."):
                continue  # a bundle being written
            bundles[f"{directory.parent.name}/{directory.name}"] = directory
        return bundles

    def _try_load(self, key: str, directory: Path) -> ServedModel | None:
        try:
            model = self._load(directory)
        except Exception as error:  # one broken bundle must not take the others down
            log.error("model %s failed to load: %s", key, error)
            self.failures[key] = f"{type(error).__name__}: {error}"
            return None
        self.failures.pop(key, None)
        log.info("loaded %s (%s) on %s", key, model.config.task.value, model.provider)
        return model

    def load_all(self) -> None:
        for key, directory in self._bundles().items():
            self._fingerprints[key] = fingerprint(directory)
            model = self._try_load(key, directory)
            if model is not None:
                self._models.setdefault(model.name, {})[model.version] = model
        self._count()

    def _count(self) -> None:
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

    async def reload(self) -> dict[str, list[str]]:
        """Bring the served set in line with the directory; returns what changed."""
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            on_disk = await loop.run_in_executor(None, self._bundles)
            changes: dict[str, list[str]] = {"loaded": [], "unloaded": [], "failed": []}
            for key, directory in on_disk.items():
                mark = await loop.run_in_executor(None, fingerprint, directory)
                if self._fingerprints.get(key) == mark:
                    continue
                self._fingerprints[key] = mark
                model = await loop.run_in_executor(None, self._try_load, key, directory)
                if model is None:
                    changes["failed"].append(key)
                    continue
                model.start()
                versions = self._models.setdefault(model.name, {})
                previous = versions.get(model.version)
                versions[model.version] = model  # requests from now on go to the new copy
                if previous is not None:
                    self._retire(previous)
                changes["loaded"].append(key)
            for key in [k for k in self._fingerprints if k not in on_disk]:
                del self._fingerprints[key]
                self.failures.pop(key, None)
                name, version = key.split("/", 1)
                model = self._models.get(name, {}).pop(version, None)
                if not self._models.get(name):
                    self._models.pop(name, None)
                if model is not None:
                    self._retire(model)
                    changes["unloaded"].append(key)
            self._count()
            if any(changes.values()):
                log.info("repository reloaded: %s", changes)
            return changes

    def _retire(self, model: ServedModel) -> None:
        """Close a model once the requests it holds are answered (they keep their reference)."""
        task = asyncio.create_task(model.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload()
            except Exception:  # keep watching; the next scan may succeed
                log.exception("repository scan failed")

    def start(self) -> None:
        for model in self.all():
            model.start()

    async def close(self) -> None:
        for model in self.all():
            await model.close()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def all(self) -> list[ServedModel]:
        return [m for versions in self._models.values() for m in versions.values()]

    def unserved_failures(self) -> dict[str, str]:
        """Failed bundles of models that have no version serving at all."""
        return {key: why for key, why in self.failures.items() if key.split("/", 1)[0] not in self._models}

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
            raise ModelNotFound(f"model {name!r} has no version {version!r} (versions: {', '.join(sorted(versions))})")
        return versions[version]
