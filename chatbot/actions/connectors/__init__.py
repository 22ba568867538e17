"""The kinds of order system a store can connect, by StoreConnection.kind."""
from chatbot.actions.connectors.base import Connector
from chatbot.actions.connectors.shopify import ShopifyConnector
from chatbot.actions.connectors.webhook import WebhookConnector
from chatbot.actions.connectors.woocommerce import WooCommerceConnector

KINDS: dict[str, type[Connector]] = {
    WebhookConnector.kind: WebhookConnector,
    ShopifyConnector.kind: ShopifyConnector,
    WooCommerceConnector.kind: WooCommerceConnector,
}


def connector_class(kind: str) -> type[Connector]:
    """The connector of `kind`; KeyError for a kind there is none of."""
    return KINDS[kind]
