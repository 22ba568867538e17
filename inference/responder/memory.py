"""The responder's reply memory: the tenant's own replies to earlier messages, found by
similarity and shown to the model as examples beside the knowledge.

With a few hundred pairs a decoder learns to adapt a close example (keep its shape, swap
in this message's order number, product and facts) far better than to write from
nothing. Messages are embedded with the model's own encoder, mean-pooled (the MiniLM
sentence-embedding recipe), so no second model is loaded.
"""
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlu.encoder import sentence_vectors as encoder_vectors

from inference.responder.placeholders import Masker

MEMORY_FILE = "memory.json"
VECTORS_FILE = "memory.npy"


def sentence_vectors(encoder, tokenizer, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    return encoder_vectors(encoder, tokenizer, texts, batch_size=batch_size, max_length=64)


def masked_reply(message: str, reply: str, placeholders: list[str]) -> str:
    """The reply with its own message's values as placeholders, so an example's "<order 1>"
    means "the order number of the message being answered"."""
    masker = Masker(placeholders)
    masker.mask_source(message)
    return masker.mask_target(reply)


class ReplyMemory:
    def __init__(self, messages: list[str], replies: list[str], vectors: np.ndarray):
        self.messages, self.replies, self.vectors = messages, replies, vectors.astype(np.float32)

    def __len__(self) -> int:
        return len(self.replies)

    def nearest(self, vectors: np.ndarray, k: int, exclude: Sequence[set[int]] | None = None) -> list[list[str]]:
        """The k replies whose messages are most similar to each query (distinct texts)."""
        return [[self.replies[j] for j in rows] for rows in self.nearest_rows(vectors, k, exclude)]

    def nearest_rows(self, vectors: np.ndarray, k: int, exclude: Sequence[set[int]] | None = None) -> list[list[int]]:
        """`nearest` as row numbers, so a caller can read the message each reply answered."""
        if not len(self) or k <= 0:
            return [[] for _ in range(len(vectors))]
        scores = vectors @ self.vectors.T
        found = []
        for row, order in enumerate(np.argsort(-scores, axis=1)):
            skip = exclude[row] if exclude else set()
            picked: list[int] = []
            seen: set[str] = set()
            for j in order:
                j = int(j)
                if j in skip or self.replies[j] in seen:
                    continue
                picked.append(j)
                seen.add(self.replies[j])
                if len(picked) == k:
                    break
            found.append(picked)
        return found

    def save(self, folder: Path) -> None:
        (folder / MEMORY_FILE).write_text(json.dumps({"messages": self.messages, "replies": self.replies}))
        np.save(folder / VECTORS_FILE, self.vectors)

    @classmethod
    def load(cls, folder: Path) -> "ReplyMemory | None":
        if not (folder / MEMORY_FILE).is_file():
            return None
        data = json.loads((folder / MEMORY_FILE).read_text())
        return cls(data["messages"], data["replies"], np.load(folder / VECTORS_FILE))
