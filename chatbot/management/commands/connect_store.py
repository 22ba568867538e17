from chatbot.actions import services
from chatbot.actions.connectors.base import ACTIONS
from chatbot.errors import InvalidField
from chatbot.management.base import ServiceCommand, tenant_argument


def mapping(pairs: list[str]) -> dict:
    """["track_order=order_status", ...] as {"track_order": "order_status"}."""
    mapped = {}
    for pair in pairs:
        intent, sep, action = pair.partition("=")
        if not sep:
            raise InvalidField(f"--map takes INTENT=ACTION, e.g. track_order=order_status (got {pair!r}).",
                               "invalid_mapping", "intent_actions")
        mapped[intent.strip()] = action.strip()
    return mapped


class Command(ServiceCommand):
    help = ("Connect a store's order system so the bot can look up, cancel, change and return orders "
            "(docs/store-actions.md). A webhook connection prints its signing secret as the last line.")

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("kind", choices=["webhook", "shopify", "woocommerce"])
        parser.add_argument("--url", required=True,
                            help="webhook: the endpoint; shopify: https://SHOP.myshopify.com; woocommerce: the shop's address.")
        parser.add_argument("--secret", help="webhook: the signing secret to use (default: a new one).")
        parser.add_argument("--token", help="shopify: the Admin API access token of an app made in the store's admin.")
        parser.add_argument("--client-id", help="shopify: the client ID of an app made in the Dev Dashboard.")
        parser.add_argument("--client-secret", help="shopify: that app's client secret.")
        parser.add_argument("--consumer-key", help="woocommerce: the REST API consumer key (ck_...).")
        parser.add_argument("--consumer-secret", help="woocommerce: the REST API consumer secret (cs_...).")
        parser.add_argument("--map", action="append", default=None, metavar="INTENT=ACTION",
                            help=f"Which action answers which intent (repeat); actions: {', '.join(ACTIONS)}. "
                                 "Default: the mapping it had, else track_order=order_status.")
        parser.add_argument("--order-pattern", help=r"A regular expression for the store's order numbers, e.g. NW-\d{6}.")
        parser.add_argument("--timeout", type=float, help="Seconds the order system has to answer (default 5).")

    def handle(self, *args, tenant, kind, url, secret, token, client_id, client_secret, consumer_key, consumer_secret,
               map, order_pattern, timeout, **options):
        credentials = {"secret": secret, "token": token, "client_id": client_id, "client_secret": client_secret,
                       "consumer_key": consumer_key, "consumer_secret": consumer_secret}
        intent_actions = mapping(map) if map is not None else None
        connection, held = services.store_connect(tenant, kind, url, credentials, intent_actions=intent_actions,
                                                  order_pattern=order_pattern, timeout=timeout)
        actions = ", ".join(f"{i} -> {a}" for i, a in connection.intent_actions.items())
        self.stdout.write(f"Connected {connection.tenant.slug} to its {kind} order system: {actions}; "
                          f"order numbers like /{connection.order_pattern}/, timeout {connection.timeout:g} s.")
        if kind == "webhook":
            self.stdout.write("Check X-Chatbot-Signature on every request with this secret (docs/store-actions.md):")
            self.stdout.write(held["secret"])
