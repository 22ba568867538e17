from urllib.parse import urlsplit

from django.conf import settings
from chatbot.demo import demo_seed
from chatbot.management.base import ServiceCommand


def default_origins() -> list[str]:
    """The server's own origin (the demo page is served by it), by name and by loopback address."""
    url = urlsplit(settings.PUBLIC_URL)
    port = f":{url.port}" if url.port else ""
    hosts = {url.hostname, "localhost", "127.0.0.1"}
    return sorted(f"{url.scheme}://{host}{port}" for host in hosts if host)


class Command(ServiceCommand):
    help = "Create or refresh the demo store (knowledge base, intents, sentiment examples, an agent login)."

    def add_arguments(self, parser):
        parser.add_argument("--origin", action="append", default=[], metavar="URL",
                            help="Origins allowed to embed the demo widget (default: this server's own).")
        parser.add_argument("--agent-password", help="Password of the demo agent (default: a new random one).")

    def handle(self, *args, origin, agent_password, **options):
        seed = demo_seed(origin or default_origins(), agent_password)
        self.stdout.write(
            f"Demo store {seed.tenant.name!r} ready: {seed.knowledge} knowledge entries, "
            f"{seed.examples} training examples, {seed.sentiment} sentiment examples."
        )
        if seed.orders_connected:
            self.stdout.write(f"Demo order system ({seed.orders} orders) not connected: {seed.orders_connected}")
        else:
            self.stdout.write(f"Demo order system: {seed.orders} orders, connected (try \"Where is my order NW-482913?\", "
                              "then anna.keller@example.com)")
        self.stdout.write(f"Demo store page: {settings.PUBLIC_URL}/demo/")
        self.stdout.write(f"Agent console:   {settings.PUBLIC_URL}/console/  user {seed.agent_username}  password {seed.agent_password}")
        self.stdout.write(seed.tenant.public_key)
