"""Heavy objects (models, tokenizers, indexes) created once per process, behind get()/reload().

The active model versions are served from a per-process cache, so answering a message asks the
database nothing about them:

    with registry.lease("intent", tenant_id, load) as found:   # (model, ModelVersion) or None
        ...

- Which version is active is remembered per (kind, tenant). A promotion or rollback forgets it at once
  (`versions_forget`, called on the `model_promoted` event here and, through inference.model_watch,
  in every other process); an entry older than settings.MODEL_POLL_SECONDS is read again anyway, a
  safety net for a broadcast that never arrived.
- The loaded models are bounded by settings.MODEL_CACHE_MB (their parameters' and buffers' bytes): the
  least recently used go first, so one worker can serve many tenants.
- A model replaced (or evicted) while leases on it are held is closed only when the last one ends.
"""
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from chatbot.events import MODEL_PROMOTED
from inference import model_watch

log = logging.getLogger(__name__)

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
    """Forget one cached object (or all, and which versions are active), so the next get() loads it afresh."""
    with _lock:
        if key is None:
            dropped = list(_objects.values())
            _objects.clear()
            _lru.clear()
            versions_forget()
        else:
            dropped = [_objects.pop(key, None)]
            _lru.pop(key, None)
    _retire_all([d for d in dropped if isinstance(d, Loaded)])


def evict(predicate: Callable[[Hashable], bool]) -> None:
    """Forget every cached object whose key matches, e.g. stale versions of one tenant's index."""
    with _lock:
        dropped = []
        for key in [k for k in _objects if predicate(k)]:
            dropped.append(_objects.pop(key))
            _lru.pop(key, None)
    _retire_all([d for d in dropped if isinstance(d, Loaded)])


def get_versioned(name: str, owner: Hashable, version: Hashable, loader: Callable[[], Any]) -> Any:
    """The object cached for (`name`, `owner`) at `version`, loaded when the version changed; the older
    versions are dropped (a tenant's index after its data changed)."""
    key = (name, owner, version)
    evict(lambda k: isinstance(k, tuple) and len(k) == 3 and k[:2] == (name, owner) and k != key)
    return get(key, loader)


# --- which version is active: cached per process, forgotten on a broadcast, re-read after a while ----

_versions: dict[tuple[str, int | None], tuple[Any, float]] = {}
_generation = 0  # bumped by every forget: a read that overlapped one is not remembered
_reads = 0  # database reads of the active version, for the tests and the bench


def active_version(kind: str, tenant_id: int | None):
    """The active ModelVersion of a kind for a tenant (None: none trained), without a query when known."""
    global _reads
    _listen()
    key = (kind, tenant_id)
    entry = _versions.get(key)
    now = time.monotonic()
    if entry is not None and now - entry[1] < _poll_seconds():
        return entry[0]
    from chatbot.learning.registry import model_version_active

    generation = _generation
    version = model_version_active(kind, tenant_id)
    with _lock:
        _reads += 1
        if generation == _generation:
            _versions[key] = (version, now)
    return version


def versions_forget(kind: str | None = None, tenant_id: int | None = None) -> None:
    """Forget which version is active (of one kind and tenant, or of all): the next lookup reads it."""
    global _generation
    with _lock:
        _generation += 1
        if kind is None:
            _versions.clear()
        else:
            _versions.pop((kind, tenant_id), None)


def on_model_promoted(event: dict) -> None:
    """The `model_promoted` domain event (this process) or its broadcast (inference.model_watch)."""
    if event.get("kind"):
        versions_forget(event["kind"], event.get("tenant"))
    else:
        versions_forget()


def _poll_seconds() -> float:
    from django.conf import settings

    return settings.MODEL_POLL_SECONDS


def _listen() -> None:
    """Hear other processes' promotions: the listener runs in the process that holds the models (a
    prefork pool's child, not its parent), started on its first lookup."""
    model_watch.ensure_listening()


# --- the loaded models: leased, bounded, released when their work ends --------------------------------

@dataclass(eq=False)
class Loaded:
    """A loaded model of one version, with the leases held on it."""

    pk: int
    model: Any
    version: Any
    nbytes: int
    leases: int = 0
    retired: bool = False

    def __getitem__(self, index: int) -> Any:  # reads as the (pk, model) pair the cache held before
        return (self.pk, self.model)[index]


_lru: "OrderedDict[Hashable, None]" = OrderedDict()  # keys of the loaded models, least recently used first


@contextlib.contextmanager
def lease(kind: str, tenant_id: int | None, load: Callable[[Any], Any]) -> Iterator[tuple[Any, Any] | None]:
    """The loaded model of the active version and that version, held until the block ends (a promotion
    meanwhile loads the new one for the next caller, and closes this one after); None when none is active."""
    version = active_version(kind, tenant_id)
    if version is None:
        yield None
        return
    entry = _acquire(kind, tenant_id, version, load, lease=True)
    try:
        yield entry.model, entry.version
    finally:
        _release(entry)


def active_model(kind: str, tenant_id: int | None, load: Callable[[Any], Any]) -> tuple[Any, Any] | None:
    """The loaded model of the active version and that version, without a lease: for one-off callers
    (commands, evaluations). Serving code takes a `lease`, so a swap never closes a model in use."""
    version = active_version(kind, tenant_id)
    if version is None:
        return None
    entry = _acquire(kind, tenant_id, version, load, lease=False)
    return entry.model, entry.version


def _acquire(kind: str, tenant_id: int | None, version, load: Callable[[Any], Any], lease: bool) -> Loaded:
    key = ("active", kind, tenant_id)
    evicted: list[Loaded] = []
    with _lock:
        entry = _objects.get(key)
        if entry is None or entry.pk != version.pk:
            model = load(version)  # a failing load leaves the old entry; the next call tries again
            fresh = Loaded(version.pk, model, version, model_nbytes(model))
            if entry is not None:
                evicted.append(entry)
            _objects[key] = entry = fresh
            log.info("loaded %s %s (tenant %s, %.1f MB)", kind, version.version, tenant_id, fresh.nbytes / 2**20)
            _lru[key] = None
            evicted += _bound(keep=key)
        else:
            entry.version = version  # the same version, maybe re-read (its `serving` changed)
        _lru[key] = None
        _lru.move_to_end(key)
        if lease:
            entry.leases += 1
    _retire_all(evicted)
    return entry


def _release(entry: Loaded) -> None:
    with _lock:
        entry.leases -= 1
        close = entry.retired and entry.leases == 0
    if close:
        _close(entry)


def _bound(keep: Hashable) -> list[Loaded]:
    """Drop the least recently used models (never `keep`) while they weigh more than MODEL_CACHE_MB."""
    from django.conf import settings

    limit = settings.MODEL_CACHE_MB * 2**20
    dropped = []
    total = sum(v.nbytes for v in _objects.values() if isinstance(v, Loaded))
    for key in list(_lru):
        if total <= limit:
            break
        if key == keep:
            continue
        entry = _objects.pop(key, None)
        _lru.pop(key, None)
        if isinstance(entry, Loaded):
            total -= entry.nbytes
            dropped.append(entry)
            log.info("model cache over %s MB: dropping %s (tenant %s)", settings.MODEL_CACHE_MB, key[1], key[2])
    return dropped


def _retire_all(entries: list[Loaded]) -> None:
    """No longer served: closed now when nobody holds it, else when the last lease ends."""
    closing = []
    with _lock:
        for entry in entries:
            if not entry.retired:
                entry.retired = True
                if entry.leases == 0:
                    closing.append(entry)
    for entry in closing:
        _close(entry)


def _close(entry: Loaded) -> None:
    close = getattr(entry.model, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - a model that fails to close must not fail the message
            log.exception("closing model version %s failed", entry.pk)


def loaded_models() -> dict[Hashable, Loaded]:
    """The models this process holds now, least recently used first (for tests and the admin)."""
    with _lock:
        return {key: _objects[key] for key in _lru if key in _objects}


def model_nbytes(model: Any) -> int:
    """Estimated memory of a loaded model: the bytes of the tensors and arrays it holds (its parameters,
    buffers, int8 packed weights, neighbour tables), each counted once; a shared base encoder not at all."""
    import numpy as np
    import torch

    seen: set[int] = set()
    storages: set[tuple[int, int]] = set()
    total = 0

    def visit(obj: Any, depth: int) -> None:
        nonlocal total
        if id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            try:
                size = obj.nelement() * obj.element_size()
                where = (obj.data_ptr(), size)
            except (RuntimeError, NotImplementedError):
                return
            if where not in storages:  # a tied or shared weight counts once
                storages.add(where)
                total += size
        elif isinstance(obj, np.ndarray):
            total += obj.nbytes
        elif isinstance(obj, torch.nn.Module):
            # A base encoder shared by every probe on it (nlu.classifier.encoder_shared) is no one model's.
            shared = tuple(f"{name}." for name, module in obj.named_modules() if getattr(module, "shared_from", None))
            if "." in shared:
                return
            for key, value in obj.state_dict(keep_vars=True).items():
                if shared and key.startswith(shared):
                    continue
                visit(value, depth + 1)
        elif isinstance(obj, dict):
            for value in obj.values():
                if isinstance(value, (torch.Tensor, np.ndarray, torch.nn.Module, dict, list, tuple)) \
                        or hasattr(value, "__dict__"):
                    visit(value, depth + 1)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                visit(value, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type) and "Tokenizer" not in type(obj).__name__:
            visit(vars(obj), depth + 1)
        elif hasattr(obj, "_packed_params"):
            visit(obj._packed_params, depth + 1)

    visit(model, 0)
    return total


model_watch.handle(MODEL_PROMOTED, on_model_promoted)
model_watch.handle(model_watch.RESYNC, lambda payload: versions_forget())
