from chatbot.management.base import ServiceCommand, tenant_argument
from chatbot.models import AgentMembership
from chatbot.conversations.services import agent_add


class Command(ServiceCommand):
    help = "Create or update a console user in a store's team (agent or manager)."

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("username")
        parser.add_argument("--password", help="Set this password (a new user without one cannot log in).")
        parser.add_argument("--role", choices=AgentMembership.Role.values, default=AgentMembership.Role.AGENT)
        parser.add_argument("--name", help="Display name visitors see, e.g. 'Ada Lovelace'.")
        parser.add_argument("--email")

    def handle(self, *args, tenant, username, password, role, name, email, **options):
        membership, created = agent_add(tenant, username, password=password, role=role, name=name, email=email)
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {membership.user.username!r}: {membership.role} of {membership.tenant.slug!r}.")
        if created and password is None:
            self.stdout.write("No password was given: set one with --password before logging in.")
