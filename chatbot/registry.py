"""Model registry: where trained versions go on disk and which one is active."""
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import ModelVersion, Tenant


def model_version_dir(kind: str, tenant: Tenant | None) -> tuple[str, Path]:
    """A fresh, not yet existing folder for a new version: MODELS_DIR/<tenant|global>/<kind>/<version>."""
    owner = tenant.slug if tenant else "global"
    version = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    return version, Path(settings.MODELS_DIR) / owner / kind / version


@transaction.atomic
def model_version_register(
    kind: str, tenant: Tenant | None, version: str, path: Path | str, metrics: dict, activate: bool = True
) -> ModelVersion:
    """Record a trained version; activating it deactivates the kind's previous active one."""
    if activate:
        ModelVersion.objects.select_for_update().filter(kind=kind, tenant=tenant, is_active=True).update(
            is_active=False
        )
    return ModelVersion.objects.create(
        kind=kind, tenant=tenant, version=version, path=str(path), metrics=metrics, is_active=activate
    )


def model_version_active(kind: str, tenant: Tenant | int | None) -> ModelVersion | None:
    """The active version of a kind for a tenant (None for global kinds such as sentiment)."""
    return ModelVersion.objects.filter(kind=kind, tenant=tenant, is_active=True).order_by("-created_at").first()
