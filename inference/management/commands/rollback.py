from chatbot.learning import services as learning
from chatbot.learning.registry import model_version_active, model_version_rollback
from chatbot.management.base import ServiceCommand, tenant_argument
from chatbot.models import ModelVersion
from chatbot.conversations.selectors import tenant_require


class Command(ServiceCommand):
    help = "Restore the version of a tenant's model that was active before the current one."

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("--kind", required=True, choices=ModelVersion.Kind.values,
                            help="which model (sentiment is the one global model)")

    def handle(self, *args, tenant, kind, **options):
        owner = learning.run_owner(tenant_require(tenant), kind)
        current = model_version_active(kind, owner)
        restored = model_version_rollback(kind, owner, reason="rollback command")
        self.stdout.write(f"{kind} model {restored.version} is active now (was {current.version})")
