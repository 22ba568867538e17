"""Store actions: the bot looks up, cancels, changes and returns orders in the store's own order system.

connectors/ speak to one kind of order system each (the store's webhook, Shopify, WooCommerce) through
outbound (the one way out of the platform, guarded against SSRF); services call them, record every call
and keep the circuit breaker; dialogue gathers the parameters over the conversation and asks for consent;
texts word it all in the visitor's language. docs/store-actions.md describes the contract.
"""
