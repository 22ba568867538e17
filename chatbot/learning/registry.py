"""Model registry: where trained versions go on disk, which one is active, promotion and rollback.

Every change of the active version goes through `model_version_promote` (or `model_version_rollback`),
which emits `model_promoted` on commit: the workers switch on their next message (inference.registry).
"""
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatbot import events
from chatbot.errors import ServiceError
from chatbot.models import ModelVersion, Tenant

Status = ModelVersion.Status


class NothingToRollBack(ServiceError):
    """The tenant's kind has no earlier version to restore (or none active to roll back)."""

    code = "nothing_to_roll_back"


def model_version_dir(kind: str, tenant: Tenant | None) -> tuple[str, Path]:
    """A fresh, not yet existing folder for a new version: MODELS_DIR/<tenant|global>/<kind>/<version>."""
    owner = tenant.slug if tenant else "global"
    version = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    return version, Path(settings.MODELS_DIR) / owner / kind / version


@transaction.atomic
def model_version_register(
    kind: str, tenant: Tenant | None, version: str, path: Path | str, metrics: dict, activate: bool = True,
    *, data_hash: str = "",
) -> ModelVersion:
    """Record a trained version: a candidate, or (activate) the active one at once, as a first model is.

    Its parent is the version active when it was registered: a rollback of it restores that one.
    """
    parent = model_version_active(kind, tenant)
    created = ModelVersion.objects.create(
        kind=kind, tenant=tenant, version=version, path=str(path), metrics=metrics, parent=parent,
        data_hash=data_hash, status=Status.CANDIDATE,
    )
    if activate:
        model_version_promote(created.pk, decision={"promoted": True, "reason": "activated at registration"})
        created.refresh_from_db()
    return created


def _promoted(version: ModelVersion, previous: ModelVersion | None, action: str) -> None:
    events.emit({
        "type": events.MODEL_PROMOTED, "tenant": version.tenant_id, "kind": version.kind, "version": version.version,
        "id": version.pk, "previous": previous.pk if previous else None, "action": action,
    })


def _lock_kind(kind: str, tenant_id: int | None) -> list[ModelVersion]:
    """Lock the kind's versions of one owner: promotions and rollbacks of it happen one at a time."""
    return list(ModelVersion.objects.select_for_update().filter(kind=kind, tenant_id=tenant_id).order_by("pk"))


@transaction.atomic
def model_version_promote(version_id: int, *, decision: dict | None = None, evaluations: dict | None = None,
                          serving: str | None = None) -> ModelVersion:
    """Make a version the active one of its kind; the one it replaces is retired. Idempotent."""
    version = ModelVersion.objects.get(pk=version_id)
    versions = _lock_kind(version.kind, version.tenant_id)
    version = next(v for v in versions if v.pk == version_id)
    previous = next((v for v in versions if v.status == Status.ACTIVE and v.pk != version.pk), None)
    if previous is not None:
        previous.status = Status.RETIRED
        previous.save(update_fields=["status"])
    fields = ["status", "promoted_at"]
    for name, value in (("decision", decision), ("evaluations", evaluations), ("serving", serving)):
        if value is not None:
            setattr(version, name, value)
            fields.append(name)
    if version.status != Status.ACTIVE:
        version.status, version.promoted_at = Status.ACTIVE, timezone.now()
        version.save(update_fields=fields)
        _promoted(version, previous, "promoted")
    elif len(fields) > 2:  # e.g. the responder's `serving` changed: workers must re-read it too
        version.save(update_fields=fields[2:])
        _promoted(version, None, "updated")
    return version


@transaction.atomic
def model_version_reject(version_id: int, *, decision: dict, evaluations: dict | None = None) -> ModelVersion:
    """The gate refused a candidate: it stays on disk and in the list, never served."""
    version = ModelVersion.objects.select_for_update().get(pk=version_id)
    if version.status == Status.ACTIVE:
        raise ValueError(f"{version} is active; roll it back instead of rejecting it")
    version.status, version.decision = Status.REJECTED, decision
    if evaluations is not None:
        version.evaluations = evaluations
    version.save(update_fields=["status", "decision", "evaluations"])
    return version


@transaction.atomic
def model_version_rollback(kind: str, tenant: Tenant | int | None, *, reason: str = "rolled back") -> ModelVersion:
    """Restore the version that was active before the current one (its parent, else the newest retired
    one); the current one is retired. Returns the restored version."""
    tenant_id = tenant.pk if isinstance(tenant, Tenant) else tenant
    versions = _lock_kind(kind, tenant_id)
    current = next((v for v in versions if v.status == Status.ACTIVE), None)
    if current is None:
        raise NothingToRollBack(f"nothing to roll back: there is no active {kind} model to roll back")
    # A version rolled back once is not restored by the next rollback: that would undo the first.
    earlier = [v for v in versions if v.status == Status.RETIRED and v.pk != current.pk
               and not v.decision.get("rolled_back")]
    target = next((v for v in earlier if v.pk == current.parent_id), None)
    if target is None:
        earlier.sort(key=lambda v: (v.promoted_at or v.created_at, v.pk))
        target = earlier[-1] if earlier else None
    if target is None:
        raise NothingToRollBack(f"nothing to roll back: the active {kind} model {current.version} has no earlier "
                                "version to restore")
    current.status = Status.RETIRED
    current.decision = current.decision | {"rolled_back": True, "rollback_reason": reason,
                                            "rolled_back_at": timezone.now().isoformat()}
    current.save(update_fields=["status", "decision"])
    target.status, target.promoted_at = Status.ACTIVE, timezone.now()
    target.save(update_fields=["status", "promoted_at"])
    _promoted(target, current, "rolled_back")
    return target


def model_version_active(kind: str, tenant: Tenant | int | None) -> ModelVersion | None:
    """The active version of a kind for a tenant (None for global kinds such as sentiment)."""
    return ModelVersion.objects.filter(kind=kind, tenant=tenant, status=Status.ACTIVE).first()
