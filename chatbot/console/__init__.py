"""The agent console's pages, forms and canned replies, and what agents did with suggested replies."""
