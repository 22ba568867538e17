import json

from chatbot.conversations import selectors
from chatbot.errors import UnknownTenant
from chatbot.learning.registry import model_version_active
from chatbot.management.base import ServiceCommand, tenant_argument
from chatbot.models import ModelVersion


class Command(ServiceCommand):
    help = "Show the active model versions of a tenant (intent, responder) and the global sentiment model."

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("--check", nargs="*", metavar="KIND", choices=ModelVersion.Kind.values,
                            help="exit with status 1 when one of these kinds (default: all) has no active version")

    def handle(self, *args, tenant, check, **options):
        found = selectors.tenant_by_slug(tenant)
        if found is None:
            raise UnknownTenant(f"Unknown tenant {tenant!r}; `python manage.py create_tenant` makes one.")
        missing = []
        for kind in ModelVersion.Kind.values:
            version = model_version_active(kind, None if kind == ModelVersion.Kind.SENTIMENT else found)
            if version is None:
                missing.append(kind)
                self.stdout.write(f"{kind:10} none trained")
            else:
                metrics = {k: v for k, v in version.metrics.items() if isinstance(v, (int, float))}
                self.stdout.write(f"{kind:10} {version.version}  {json.dumps(metrics)}")
        if check is not None and set(check or ModelVersion.Kind.values) & set(missing):
            raise SystemExit(1)
