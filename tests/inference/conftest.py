"""A tiny BERT (a few hundred WordPiece tokens, two layers) saved to disk: the base the
responder tests warm-start from, so they run in seconds and need no download."""
import re
import string

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

PAIRS = [
    ("where is my order NW-123456", "Your order NW-123456 is on its way and arrives in 3 days."),
    ("has order NW-555001 shipped yet", "Your order NW-555001 is on its way and arrives in 3 days."),
    ("track my package NW-908070 please", "Your order NW-908070 is on its way and arrives in 3 days."),
    ("how do I return a jacket", "You can return any item within 30 days for a full refund."),
    ("can I send back shoes", "You can return any item within 30 days for a full refund."),
    ("what is your return policy", "You can return any item within 30 days for a full refund."),
    ("do you ship abroad", "We ship to 40 countries from our Northwind warehouse."),
    ("international shipping?", "We ship to 40 countries from our Northwind warehouse."),
    ("hello", "Hi! How can I help you today?"),
    ("hi there", "Hi! How can I help you today?"),
    ("email me at jane@example.com about order NW-100200",
     "We will email jane@example.com about order NW-100200 today."),
    ("write to bob@shop.example about NW-777888", "We will email bob@shop.example about order NW-777888 today."),
]
KNOWLEDGE = [
    "Orders arrive in 3 days.",
    "Returns are free within 30 days.",
    "We ship to 40 countries.",
]


def _vocab(texts: list[str]) -> list[str]:
    words = {w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower())}
    pieces = set(string.ascii_lowercase) | set(string.digits) | set(string.punctuation)
    pieces |= {f"##{c}" for c in string.ascii_lowercase + string.digits}
    specials = ["[PAD]", *(f"[unused{i}]" for i in range(30)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + sorted(words | pieces | {"message", "intent", "fact", "context", "visitor", "bot", "|"})


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """Path of a tiny random BERT with its tokenizer."""
    path = tmp_path_factory.mktemp("tiny-bert")
    texts = [m for m, _ in PAIRS] + [r for _, r in PAIRS] + KNOWLEDGE
    (path / "vocab.txt").write_text("\n".join(_vocab(texts)) + "\n")
    tokenizer = BertTokenizer.from_pretrained(str(path), do_lower_case=True)
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    BertModel(config).save_pretrained(path)
    return str(path)
