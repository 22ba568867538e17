"""Finding an action's parameters in what the visitor wrote, and masking them for the audit and the why."""
import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
ADDRESS_MIN, ADDRESS_MAX = 8, 300


def order_numbers(pattern: str, text: str) -> list[str]:
    """The order numbers in `text`, by the store's pattern (any case: "nw-482913" is NW-482913)."""
    try:
        found = re.finditer(pattern, text, re.IGNORECASE)
        return [m.group(0).strip().upper() for m in found if m.group(0).strip()]
    except re.error:
        return []


def emails(text: str) -> list[str]:
    return [m.group(0).rstrip(".").lower() for m in _EMAIL.finditer(text)]


def params_found(pattern: str, texts: list[str]) -> dict:
    """The newest order number and e-mail address in the visitor's messages (oldest first)."""
    found = {}
    for text in reversed(texts):
        if "order_number" not in found and (numbers := order_numbers(pattern, _EMAIL.sub(" ", text))):
            found["order_number"] = numbers[-1]
        if "email" not in found and (addresses := emails(text)):
            found["email"] = addresses[-1]
    return found


def address_in(text: str) -> str | None:
    """A new shipping address as the visitor wrote it, in one message (a person checks its format)."""
    address = " ".join(text.split())
    return address if ADDRESS_MIN <= len(address) <= ADDRESS_MAX and any(c.isdigit() for c in address) else None


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def params_mask(params: dict) -> dict:
    """What the audit and the why keep of the parameters: the order number, the rest masked."""
    masked = {}
    for name, value in params.items():
        if value in (None, ""):
            continue
        if name == "order_number":
            masked[name] = str(value)
        elif name == "email":
            masked[name] = mask_email(str(value))
        else:
            masked[name] = str(value)[:3] + "***"
    return masked
