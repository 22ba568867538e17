from django.core.management.base import BaseCommand, CommandError

from chatbot import learning
from chatbot.errors import UnknownTenant
from chatbot.models import ModelVersion
from chatbot.registry import NothingToRollBack, model_version_active, model_version_rollback
from chatbot.selectors import tenant_require


class Command(BaseCommand):
    help = "Restore the version of a tenant's model that was active before the current one."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--kind", required=True, choices=ModelVersion.Kind.values,
                            help="which model (sentiment is the one global model)")

    def handle(self, *args, tenant, kind, **options):
        try:
            tenant = tenant_require(tenant)
        except UnknownTenant as exc:
            raise CommandError(str(exc)) from exc
        owner = learning.run_owner(tenant, kind)
        current = model_version_active(kind, owner)
        try:
            restored = model_version_rollback(kind, owner, reason="rollback command")
        except NothingToRollBack as exc:
            raise CommandError(f"nothing to roll back: {exc}") from exc
        self.stdout.write(f"{kind} model {restored.version} is active now (was {current.version})")
