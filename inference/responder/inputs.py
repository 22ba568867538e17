"""The responder's input text: the message, its intent, retrieved knowledge and a bounded
window of the conversation, in one format shared by training and serving."""
from collections.abc import Sequence

MAX_TURNS = 4  # earlier turns kept before the message
MAX_TURN_CHARS = 300
MAX_KNOWLEDGE = 2
MAX_KNOWLEDGE_CHARS = 400
MAX_EXAMPLES = 2  # replies the tenant gave to the most similar earlier messages
MAX_EXAMPLE_CHARS = MAX_KNOWLEDGE_CHARS  # models saved before this was a setting clip examples here
VISITOR = "visitor"


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def split_history(history: Sequence[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """The message being answered (the last visitor turn) and the turns before it."""
    turns = [(str(sender), str(text)) for sender, text in history if str(text).strip()]
    for i in range(len(turns) - 1, -1, -1):
        if turns[i][0] == VISITOR:
            return turns[i][1], turns[:i]
    return "", turns


def build_source(
    history: Sequence[tuple[str, str]],
    intent: str = "",
    knowledge: Sequence[str] = (),
    max_turns: int = MAX_TURNS,
    max_knowledge: int = MAX_KNOWLEDGE,
    examples: Sequence[str] = (),
    max_example_chars: int = MAX_EXAMPLE_CHARS,
) -> str:
    """One line for the encoder; `history` is (sender, text) turns, oldest first, ending with
    the visitor message to answer; `examples` are replies to similar earlier messages, clipped
to `max_example_chars` (long replies are copied whole only when the whole reply is shown).
    The message comes first so length truncation drops old context before the question."""
    message, earlier = split_history(history)
    parts = [f"message: {_clip(message, MAX_TURN_CHARS)}"]
    if intent:
        parts.append(f"intent: {intent.replace('_', ' ')}")
    for i, example in enumerate(list(examples)[:MAX_EXAMPLES], start=1):
        parts.append(f"example {i}: {_clip(example, max_example_chars)}")
    for i, answer in enumerate(list(knowledge)[:max_knowledge], start=1):
        parts.append(f"fact {i}: {_clip(answer, MAX_KNOWLEDGE_CHARS)}")
    if max_turns > 0 and earlier:
        context = " | ".join(f"{sender}: {_clip(text, MAX_TURN_CHARS)}" for sender, text in earlier[-max_turns:])
        parts.append(f"context: {context}")
    return " || ".join(parts)
