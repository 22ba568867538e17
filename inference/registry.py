"""Heavy objects (models, tokenizers, indexes) created once per process, behind get()/reload()."""
import threading
from collections.abc import Callable, Hashable
from typing import Any

_lock = threading.RLock()  # a loader may get() what it builds on
_objects: dict[Hashable, Any] = {}


def get(key: Hashable, loader: Callable[[], Any]) -> Any:
    """The object cached under `key`, loading it with `loader` the first time."""
    obj = _objects.get(key)
    if obj is None:
        with _lock:
            obj = _objects.get(key)
            if obj is None:
                obj = loader()
                _objects[key] = obj
    return obj


def reload(key: Hashable | None = None) -> None:
    """Forget one cached object (or all), so the next get() loads it afresh."""
    with _lock:
        if key is None:
            _objects.clear()
        else:
            _objects.pop(key, None)


def evict(predicate: Callable[[Hashable], bool]) -> None:
    """Forget every cached object whose key matches, e.g. stale versions of one tenant's index."""
    with _lock:
        for key in [k for k in _objects if predicate(k)]:
            del _objects[key]


def get_versioned(name: str, owner: Hashable, version: Hashable, loader: Callable[[], Any]) -> Any:
    """The object cached for (`name`, `owner`) at `version`, loaded when the version changed; the older
    versions are dropped (a tenant's index after its data changed)."""
    key = (name, owner, version)
    evict(lambda k: isinstance(k, tuple) and len(k) == 3 and k[:2] == (name, owner) and k != key)
    return get(key, loader)


def active_model(kind: str, tenant_id: int | None, load: Callable[[Any], Any]) -> tuple[Any, Any] | None:
    """The loaded model of the active registry version of `kind` for a tenant, and that version.

    One small query a call; a newly promoted version is loaded on the next call (no restart)
    and the one it replaces is dropped. None when no version is active.
    """
    from chatbot.registry import model_version_active

    version = model_version_active(kind, tenant_id)
    if version is None:
        return None
    key = ("active", kind, tenant_id)
    with _lock:
        cached = _objects.get(key)
        if cached is None or cached[0] != version.pk:
            if cached is not None and hasattr(cached[1], "close"):
                cached[1].close()
            cached = (version.pk, load(version))
            _objects[key] = cached
    return cached[1], version
