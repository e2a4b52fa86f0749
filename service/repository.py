"""The model repository: `<root>/<name>/<version>/` bundles, loaded onto ONNX Runtime. It is the
one owner of every model version's life: load, serve (through leases), replace, retire.

`load_all` runs at start-up; `reload` rescans the directory while serving: new and changed bundles
are loaded off the event loop and swapped in atomically; removed or replaced ones are taken out of
routing at once and closed once every request that leased them has been answered. A bundle that
fails to load is reported and, if an earlier copy of it was serving, that copy keeps serving.

All state changes happen on the event loop, and each replaces an immutable snapshot, so `/health`
and routing always read a consistent view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from rnnserve_bundle.layout import BundleRef, find_bundles, validate_bundle
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


@dataclass(frozen=True)
class Snapshot:
    """What is served and what failed, at one moment."""

    models: Mapping[str, Mapping[str, ServedModel]] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)

    def all(self) -> list[ServedModel]:
        return [m for versions in self.models.values() for m in versions.values()]

    def unserved_failures(self) -> dict[str, str]:
        """Failed bundles of models that have no version serving at all."""
        return {key: why for key, why in self.failures.items() if key.split("/", 1)[0] not in self.models}


def _frozen(models: dict[str, dict[str, ServedModel]], failures: dict[str, str]) -> Snapshot:
    return Snapshot(
        MappingProxyType({name: MappingProxyType(dict(v)) for name, v in models.items() if v}),
        MappingProxyType(dict(failures)),
    )


class ModelRepository:
    def __init__(self, root: Path, settings: Settings, metrics: Metrics) -> None:
        self.root = root
        self._settings = settings
        self._metrics = metrics
        self._fingerprints: dict[str, Fingerprint] = {}
        self._snapshot = Snapshot()
        self._reload_lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def _load(self, ref: BundleRef) -> ServedModel:
        """Executor thread: read, check and warm up one bundle (no shared state touched)."""
        config = validate_bundle(ref.directory)
        model = ServedModel(ref, config, self._settings, self._metrics)
        model.warm_up()
        return model

    def _try_load(self, ref: BundleRef) -> ServedModel | str:
        """The model, or why it failed: one broken bundle must not take the others down."""
        try:
            model = self._load(ref)
        except Exception as error:
            log.error("model %s failed to load: %s", ref.key, error)
            return f"{type(error).__name__}: {error}"
        log.info("loaded %s (%s) on %s", ref.key, model.config.task.value, model.provider)
        return model

    def load_all(self) -> None:
        models: dict[str, dict[str, ServedModel]] = {}
        failures: dict[str, str] = {}
        for key, ref in find_bundles(self.root).items():
            self._fingerprints[key] = fingerprint(ref.directory)
            loaded = self._try_load(ref)
            if isinstance(loaded, str):
                failures[key] = loaded
            else:
                models.setdefault(ref.name, {})[ref.version] = loaded
                loaded.observer.provider(loaded.provider)
        self._publish(models, failures)

    def _publish(self, models: dict[str, dict[str, ServedModel]], failures: dict[str, str]) -> None:
        self._snapshot = _frozen(models, failures)
        self._metrics.models_loaded.set(len(self._snapshot.all()))

    async def reload(self) -> dict[str, list[str]]:
        """Bring the served set in line with the directory; returns what changed."""
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            on_disk = await loop.run_in_executor(None, find_bundles, self.root)
            changes: dict[str, list[str]] = {"loaded": [], "unloaded": [], "failed": []}
            for key, ref in on_disk.items():
                mark = await loop.run_in_executor(None, fingerprint, ref.directory)
                if self._fingerprints.get(key) == mark:
                    continue
                self._fingerprints[key] = mark
                loaded = await loop.run_in_executor(None, self._try_load, ref)
                current = self._snapshot
                models = {name: dict(v) for name, v in current.models.items()}
                failures = dict(current.failures)
                if isinstance(loaded, str):
                    failures[key] = loaded
                    changes["failed"].append(key)
                else:
                    failures.pop(key, None)
                    loaded.start()
                    loaded.observer.provider(loaded.provider)
                    previous = models.setdefault(ref.name, {}).get(ref.version)
                    models[ref.name][ref.version] = loaded  # requests from now on go to the new copy
                    if previous is not None:
                        self._retire(previous, unload=False)
                    changes["loaded"].append(key)
                self._publish(models, failures)
            for key in [k for k in self._fingerprints if k not in on_disk]:
                del self._fingerprints[key]
                name, version = key.split("/", 1)
                current = self._snapshot
                models = {n: dict(v) for n, v in current.models.items()}
                failures = {k: v for k, v in current.failures.items() if k != key}
                model = models.get(name, {}).pop(version, None)
                self._publish(models, failures)
                if model is not None:
                    self._retire(model, unload=True)
                    changes["unloaded"].append(key)
            if any(changes.values()):
                log.info("repository reloaded: %s", changes)
            return changes

    def _retire(self, model: ServedModel, unload: bool) -> None:
        """Close a model, out of routing already, once the requests leasing it are answered; an
        unloaded version's metric series go with it (a replaced one's stay with its successor)."""

        async def retire() -> None:
            await model.close()
            if unload:
                model.observer.remove()

        task = asyncio.create_task(retire())
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
        for model in self._snapshot.all():
            model.start()

    async def close(self) -> None:
        for model in self._snapshot.all():
            await model.close()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def all(self) -> list[ServedModel]:
        return self._snapshot.all()

    def versions(self, name: str) -> list[str]:
        return sorted(self._snapshot.models.get(name, {}), key=version_key)

    def get(self, name: str, version: str | None = None) -> ServedModel:
        models = self._snapshot.models
        versions = models.get(name)
        if not versions:
            known = ", ".join(sorted(models)) or "none"
            raise ModelNotFound(f"no model named {name!r} (loaded: {known})")
        if version is None:
            return versions[max(versions, key=version_key)]
        if version not in versions:
            raise ModelNotFound(f"model {name!r} has no version {version!r} (versions: {', '.join(sorted(versions))})")
        return versions[version]

    def lease(self, name: str, version: str | None = None) -> Lease:
        """The model, held until the `with` block ends: a reload that retires it meanwhile waits
        for this request to be answered before stopping its batcher. Found and leased with no await
        between, so no retirement can come in between."""
        return Lease([self.get(name, version)])

    def leases(self, wanted: list[tuple[str, str | None]]) -> Lease:
        """Several models, all found before any is leased (an unknown one fails the request at once)."""
        return Lease([self.get(name, version) for name, version in wanted])


class Lease:
    """Holds models for the length of a `with` block (a plain class: this runs on every request)."""

    __slots__ = ("models",)

    def __init__(self, models: list[ServedModel]) -> None:
        self.models = models

    def __enter__(self) -> list[ServedModel]:
        for model in self.models:
            model.acquire()
        return self.models

    def __exit__(self, *_: object) -> None:
        for model in self.models:
            model.release()
