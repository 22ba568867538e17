"""Personal data out of training data: e-mail addresses, card numbers, IBANs, order numbers, phone
numbers and street addresses become typed placeholders ("[email]", "[card]", ...) before anything is
trained or exported.

    pii_scrub("I'm mia@example.com, order NW-482913")   # "I'm [email], order [order]"
    pii_scrub(text, keep=pii_values(store_texts))        # the store's own help address stays

Phone numbers come from Google's libphonenumber (the `phonenumbers` port), then a shape check for the
numbers it does not know (other regions, fictional ranges). Card numbers and IBANs are only the
candidates whose check digits hold (Luhn, ISO 7064 mod 97), so prices, dates and sizes stay. E-mail
and order patterns are the responder's (`inference.responder.placeholders`), widened to what visitors
type ("nw-482913", "#12345678", "order 123456"). Pure Python and regexes: no model, no download, and
fast enough for every row of a training set (texts with no digit and no "@" cost one regex search).
"""
import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import phonenumbers

log = logging.getLogger(__name__)

# The placeholder of each kind, in the order the kinds are searched: check-digit numbers first (a card
# number also looks like a phone number), then identifiers, phones, addresses, and last any long number.
PLACEHOLDERS: dict[str, str] = {
    "email": "[email]",
    "iban": "[iban]",
    "card": "[card]",
    "order": "[order]",
    "phone": "[phone]",
    "address": "[address]",
    "number": "[number]",
}
KINDS = tuple(PLACEHOLDERS)
# Phone numbers written without a country code are read as numbers of this region first.
PHONE_REGION = "US"
PASSES = 3  # scrubbing stops when a pass changes nothing; placeholders never match, so one more pass suffices

# The responder's e-mail pattern (placeholders.PATTERNS["email"]), kept here so nlu needs no inference import.
_EMAIL = re.compile(r"\b[\w.+-]+(?:'[\w.+-]+)*@[\w-]+(?:\.[\w-]+)+\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
# A run of digit groups; a card number is the part of it whose groups (3+ digits each) hold 13 to 19 digits
# and a valid Luhn check digit ("ref 5 4111 1111 1111 1111": the last four groups).
_DIGIT_RUN = re.compile(r"(?<![\w-])\d+(?:[ -]\d+)*(?![\w-])")
_DIGIT_GROUP = re.compile(r"\d+")
# NW-482913 (the responder's order pattern, any case), #12345678, and a number after the word that names it.
_ORDER_CODE = re.compile(r"(?<![\w-])[A-Z]{2,5}-\d{4,12}(?![\w-])", re.IGNORECASE)
_ORDER_CODE_SPACED = re.compile(r"(?<![\w-])[A-Z]{2,5} \d{5,12}(?![\w-])")  # "NW 482913"; capitals only
_ORDER_HASH = re.compile(r"(?<![\w&])#\s?\d{4,14}\b")
# A number of 4+ digits (letters and dashes allowed) right after the word that names it: "order 123456",
# "tracking number 1Z999AA10123456784". Found from the number back, which is far cheaper than from each word.
_ID_TOKEN = re.compile(
    r"(?<![\w-])(?=[A-Z0-9-]*\d[A-Z0-9-]*\d[A-Z0-9-]*\d[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,30}(?![\w-])", re.IGNORECASE)
_ID_NAME_BEFORE = re.compile(
    r"\b(?:order|purchase|invoice|receipt|reference|ref|confirmation|tracking|shipment|parcel|package|return|rma|"
    r"ticket|case|account|acct|customer|member(?:ship)?)\.?(?:\s*(?:number|num|no\.?|nr\.?|id|code|#))?"
    r"\s*(?:is|was|:|#|=)?\s*$",
    re.IGNORECASE,
)
# A phone number libphonenumber does not take for the region: 9 to 15 digits in groups, or after a
# "+", or in a national format starting with 0.
_PHONE_SHAPE = re.compile(
    r"(?<![\w+])(?:\+\s?\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{1,8}(?:[\s.-]\d{1,8}){0,5}(?![\w-])"
)
_STREET_TYPES = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|terrace|ter|parkway|pkwy|"
    r"highway|hwy|way|crescent|cres|square|sq|circle|cir|alley|plaza"
)
# Words that end a street name: "takes 5 days on the road" is no address.
_NOT_NAME = (
    r"the|a|an|to|on|in|at|of|for|and|or|but|my|your|our|his|her|their|is|are|was|were|be|it|this|that|these|"
    r"those|by|from|with|per|each|every|more|less|than|then|all|any|some|no|not|so|too|very|days?|hours?|"
    r"minutes?|weeks?|months?|years?|items?|pairs?|points?|times?|pieces?|dollars?|euros?|pounds?|percent"
)
_ADDRESS = re.compile(
    r"(?<![\w$€£.,-])\d{1,5}[A-Za-z]?,?\s+"
    rf"(?:(?!(?:{_NOT_NAME})\b)[A-Za-z0-9][\w'.-]*\s+){{1,3}}"
    rf"(?:{_STREET_TYPES})\b(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"(?:,?\s*(?:apt|apartment|suite|ste|unit|flat|floor|fl|#)\.?\s*#?\s*\w{1,6}\b)?"
    r"(?:,\s*(?:[A-Z][\w'.-]*\s?){1,3},?\s*(?:[A-Z]{2}\s*)?\d{5}(?:-\d{4})?\b)?"
    r"(?:,?\s*[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b)?",
    re.IGNORECASE,
)
# Street first, number after ("Hauptstraße 12", "Kerkstraat 8"): found from the number back.
_HOUSE_NUMBER = re.compile(r"(?<=\s)\d{1,4}[a-z]?\b")
_STREET_BEFORE = re.compile(
    r"\b[^\W\d_][\w-]*(?:straße|strasse|str\.|weg|allee|platz|gasse|laan|straat|gatan|vej)\s+$", re.IGNORECASE)
_PO_BOX = re.compile(r"\bp\.?\s?o\.?\s+box\s+\d{1,8}\b", re.IGNORECASE)
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}\b")
_CITY_STATE_ZIP = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+){0,2},\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")
_LONG_NUMBER = re.compile(r"(?<!\d)\d{8,}(?!\d)")  # also glued to a word: "order113542617735"
_HINT = re.compile(r"\d|@")  # nothing to scrub without a digit or an "@"
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Found:
    """One piece of personal data: its kind and the text that was replaced."""

    kind: str
    value: str


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdecimal())


def luhn_valid(number: str) -> bool:
    """The check digit of payment card numbers (ISO/IEC 7812)."""
    try:
        digits = [int(ch) for ch in number if ch.isdecimal()]
    except ValueError:
        return False
    if len(digits) < 13:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _iban_valid(compact: str) -> bool:
    """ISO 13616: the country code and check digits moved to the end, read in base 36, mod 97 is 1."""
    if not (15 <= len(compact) <= 34 and compact[:2].isalpha() and compact[2:4].isdecimal()):
        return False
    try:
        return int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97 == 1
    except ValueError:
        return False


def _iban_end(candidate: str) -> int:
    """Length of the longest prefix of `candidate` that is a valid IBAN (0: none); the pattern can run on
    into the next word ("DE89 3704 0044 0532 0130 00 thanks")."""
    positions = [i for i, ch in enumerate(candidate) if ch != " "]
    compact = candidate.replace(" ", "").upper()
    if not compact.isascii():
        return 0
    for length in range(min(len(compact), 34), 14, -1):
        if _iban_valid(compact[:length]):
            return positions[length - 1] + 1
    return 0


class _Scrubber:
    """One scrub of one text: replaces as it goes and remembers what it found."""

    def __init__(self, keep: Collection[str]):
        self.keep = keep
        self.found: list[Found] = []

    def put(self, kind: str, value: str) -> str | None:
        """The placeholder for `value`, or None where it must stay (a value the store published)."""
        if value in self.keep or value.strip(" .,") in self.keep:
            return None
        self.found.append(Found(kind, value))
        return PLACEHOLDERS[kind]

    def sub(self, kind: str, pattern: re.Pattern, text: str, valid=None) -> str:
        def replace(match: re.Match) -> str:
            value = match.group(0)
            if valid is not None and not valid(value):
                return value
            return self.put(kind, value) or value

        return pattern.sub(replace, text)

    def card(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            value = match.group(0)
            groups = [g.span() for g in _DIGIT_GROUP.finditer(value)]
            out, last, i = [], 0, 0
            while i < len(groups):
                for j in range(len(groups), i, -1):
                    start, end = groups[i][0], groups[j - 1][1]
                    size = sum(b - a for a, b in groups[i:j])
                    if (13 <= size <= 19 and all(b - a >= 3 for a, b in groups[i:j])
                            and luhn_valid(value[start:end])):
                        placeholder = self.put("card", value[start:end])
                        if placeholder:
                            out += [value[last:start], placeholder]
                            last = end
                        i = j
                        break
                else:
                    i += 1
            return "".join(out) + value[last:] if out else value

        return _DIGIT_RUN.sub(replace, text)

    def iban(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            value = match.group(0)
            end = _iban_end(value)
            if not end:
                return value
            return (self.put("iban", value[:end]) or value[:end]) + value[end:]

        return _IBAN.sub(replace, text)

    def after_name(self, kind: str, text: str, pattern: re.Pattern, name_before: re.Pattern, window: int) -> str:
        """Replace the matches of `pattern` that follow a match of `name_before` (ending right before them),
        the name included where `name_before` is part of the value (a street's name)."""
        out, last = [], 0
        for match in pattern.finditer(text):
            name = name_before.search(text, max(last, match.start() - window), match.start())
            if name is None:
                continue
            start = name.start() if kind == "address" else match.start()
            placeholder = self.put(kind, text[start:match.end()])
            if placeholder:
                out += [text[last:start], placeholder]
                last = match.end()
        return "".join(out) + text[last:] if out else text

    def phones(self, text: str) -> str:
        try:
            matches = list(phonenumbers.PhoneNumberMatcher(text, PHONE_REGION, leniency=phonenumbers.Leniency.VALID))
        except Exception:  # the library on odd input: the shape check below still runs
            log.debug("phonenumbers failed on a text", exc_info=True)
            matches = []
        for match in reversed(matches):
            placeholder = self.put("phone", match.raw_string)
            if placeholder:
                text = text[:match.start] + placeholder + text[match.end:]
        return self.sub("phone", _PHONE_SHAPE, text, valid=_phone_shaped)

    def address(self, text: str) -> str:
        text = self.sub("address", _ADDRESS, text)
        text = self.after_name("address", text, _HOUSE_NUMBER, _STREET_BEFORE, 40)
        for pattern in (_PO_BOX, _CITY_STATE_ZIP, _UK_POSTCODE):
            text = self.sub("address", pattern, text)
        return text

    def run(self, text: str) -> str:
        if "@" in text:
            text = self.sub("email", _EMAIL, text)
        digits = len(_DIGIT.findall(text))
        if not digits:
            return text
        # Each kind needs so many digits: a message with a price and a size skips most patterns.
        if digits >= 10:
            text = self.iban(text)
        if digits >= 13:
            text = self.card(text)
        if digits >= 4:
            text = self.sub("order", _ORDER_CODE, text)
            text = self.sub("order", _ORDER_CODE_SPACED, text)
            text = self.sub("order", _ORDER_HASH, text)
            text = self.after_name("order", text, _ID_TOKEN, _ID_NAME_BEFORE, 40)
        if digits >= 7:
            text = self.phones(text)
        text = self.address(text)
        if digits >= 8:
            text = self.sub("number", _LONG_NUMBER, text)
        return text


def _phone_shaped(value: str) -> bool:
    """9 to 15 digits written like a phone number: after a "+", from a leading 0, or in groups of which two
    have 3+ digits ("555-123-4567"; not "sizes 10 11 12 13 14")."""
    digits = _digits(value)
    if not 9 <= len(digits) <= 15:
        return False
    if value.startswith(("+", "0")):
        return True
    groups = [g for g in re.split(r"[\s.()-]+", value) if g]
    return len(groups) > 1 and sum(len(g) >= 3 for g in groups) >= 2


def pii_find(text: str, keep: Collection[str] = ()) -> tuple[str, list[Found]]:
    """The scrubbed text and what was replaced, in the order found (what the bench reads)."""
    if not isinstance(text, str) or not _HINT.search(text):
        return text if isinstance(text, str) else "", []
    found: list[Found] = []
    for _ in range(PASSES):
        scrubber = _Scrubber(keep)
        try:
            scrubbed = scrubber.run(text)
        except Exception:  # never let odd input stop a training run; log it and keep the text as is
            log.warning("pii_scrub failed on a text of %d characters", len(text), exc_info=True)
            return text, found
        found += scrubber.found
        if scrubbed == text:
            break
        text = scrubbed
    return text, found


def pii_scrub(text: str, keep: Collection[str] = ()) -> str:
    """`text` with its e-mail addresses, card numbers, IBANs, order numbers, phone numbers, street
    addresses and other long numbers replaced by "[email]", "[card]", "[iban]", "[order]", "[phone]",
    "[address]" and "[number]". Values in `keep` (the store's own contact details) stay. Never raises;
    scrubbing a scrubbed text changes nothing."""
    return pii_find(text, keep)[0]


def pii_values(texts: Iterable[str]) -> frozenset[str]:
    """Every value the scrubber would replace in `texts`: given the store's own texts (knowledge answers),
    the help address, phone line and sample order number it published, to pass as `keep`."""
    values = set()
    for text in texts:
        values.update(found.value for found in pii_find(text)[1])
    return frozenset(values)
