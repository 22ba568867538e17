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
