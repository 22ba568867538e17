"""Business hours: whether a store's team is at work at a moment, when it is back, and the first-response
target counted in working time.

A store keeps its hours as wall-clock times of its own time zone (Tenant.timezone, an IANA name such as
Europe/Berlin): a weekly schedule, {"mon": [["09:00", "17:30"]], ...} ("24:00" ends a day; a day not listed
is closed; an empty schedule: always open), and holidays, ["2026-12-25", ...], closed all day. Every
computation turns a day's wall-clock intervals into UTC instants with zoneinfo, so a day on which the clocks
change is as long as it really is: 09:00-17:00 is eight hours of work on either side of a change, and a
target of 60 minutes counted across 02:00 on the night clocks spring forward ends an hour of real time later.
A wall-clock time the clocks skip (02:30 on that night) is taken at the moment they change; one they repeat
(01:30 when they fall back) at its first occurrence.

Pure functions of the tenant's fields, but `availability` (the widget's status), which reads them afresh.
"""
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import timezone

from chatbot import wording
from chatbot.conversations import presence
from chatbot.errors import InvalidField
from chatbot.models import Conversation, Tenant

log = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
# How far ahead an opening is looked for: a year of holidays and then some.
HORIZON_DAYS = 400
MAX_INTERVALS_A_DAY = 6
MAX_HOLIDAYS = 400
END_OF_DAY = "24:00"


class HoursInvalid(InvalidField):
    """Refused business hours; `field` is the form's: business_hours (or the day, `mon`...), holidays, timezone
    (codes: invalid_schedule, invalid_time, overlapping_hours, never_open, invalid_holiday, invalid_timezone)."""

    code = "invalid_hours"


@dataclass(frozen=True)
class Schedule:
    """A store's hours, parsed: `week` maps date.weekday() to its (opens, closes) wall-clock intervals, sorted
    (closes None: midnight at the day's end)."""

    zone: ZoneInfo
    week: dict[int, tuple[tuple[time, time | None], ...]]
    holidays: frozenset[date]
    always_open: bool


ALWAYS_OPEN = Schedule(ZoneInfo("UTC"), {}, frozenset(), True)


# --- reading and checking what a manager wrote ---------------------------------------------------------------


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """The IANA names zoneinfo knows, sorted (the console's choices)."""
    return tuple(sorted(available_timezones()))


def timezone_clean(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HoursInvalid("Choose the team's time zone, e.g. Europe/Berlin.", "invalid_timezone", "timezone")
    value = value.strip()
    if value not in time_zones() and value != "UTC":
        raise HoursInvalid(f"{value[:64]!r} is not a time zone; use a name such as Europe/Berlin or "
                           "America/New_York.", "invalid_timezone", "timezone")
    return value


def _clock(value: object, field: str, *, end: bool = False) -> time | None:
    """"09:00" as a time; "24:00" (only as an interval's end) as None, midnight at the day's end."""
    if end and value == END_OF_DAY:
        return None
    try:
        if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
            raise ValueError
        return time(int(value[:2]), int(value[3:]))
    except ValueError:
        raise HoursInvalid(f"{str(value)[:20]!r} is not a time; write it as HH:MM, e.g. 09:00 or 17:30"
                           f"{' (24:00 for midnight)' if end else ''}.", "invalid_time", field) from None


def _intervals(day: str, value: object) -> list[tuple[time, time | None]]:
    if not isinstance(value, list) or len(value) > MAX_INTERVALS_A_DAY:
        raise HoursInvalid(f"Give {day}'s hours as up to {MAX_INTERVALS_A_DAY} intervals, e.g. "
                           '[["09:00", "17:30"]].', "invalid_schedule", day)
    found = []
    for interval in value:
        if not isinstance(interval, (list, tuple)) or len(interval) != 2:
            raise HoursInvalid(f"An interval of {day} is [opens, closes], e.g. [\"09:00\", \"17:30\"].",
                               "invalid_schedule", day)
        opens, closes = _clock(interval[0], day), _clock(interval[1], day, end=True)
        if closes is not None and closes <= opens:
            raise HoursInvalid(f"On {day}, {interval[0]}-{interval[1]} closes before it opens; split a night "
                               "shift at midnight (22:00-24:00, then 00:00-06:00 the next day).", "invalid_time", day)
        found.append((opens, closes))
    found.sort(key=lambda i: i[0])
    for (_, closes), (opens, _) in zip(found, found[1:]):
        if closes is None or closes > opens:
            raise HoursInvalid(f"The hours of {day} overlap.", "overlapping_hours", day)
    return found


def _text(clock: time | None) -> str:
    return END_OF_DAY if clock is None else clock.strftime("%H:%M")


def schedule_clean(value: object) -> dict[str, list[list[str]]]:
    """{"mon": [["09:00", "17:30"]], ...} checked and sorted; {} (always open) for nothing. A schedule with no
    interval at all would never open: refused (clear it to be always open)."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise HoursInvalid('Give the hours per day, e.g. {"mon": [["09:00", "17:30"]]}.', "invalid_schedule",
                           "business_hours")
    unknown = [str(day)[:10] for day in value if day not in DAYS]
    if unknown:
        raise HoursInvalid(f"{unknown[0]!r} is not a day; use {', '.join(DAYS)}.", "invalid_schedule",
                           "business_hours")
    cleaned = {day: [[_text(o), _text(c)] for o, c in _intervals(day, value[day])] for day in DAYS if day in value}
    cleaned = {day: intervals for day, intervals in cleaned.items() if intervals}
    if value and not cleaned:
        raise HoursInvalid("These hours never open; give at least one day's hours, or none to be always open.",
                           "never_open", "business_hours")
    return cleaned


def holidays_clean(value: object) -> list[str]:
    """["2026-12-25", ...]: distinct ISO dates, sorted."""
    if value in (None, ""):
        return []
    if not isinstance(value, list) or len(value) > MAX_HOLIDAYS:
        raise HoursInvalid(f"List up to {MAX_HOLIDAYS} holidays as dates, e.g. 2026-12-25.", "invalid_holiday",
                           "holidays")
    days = set()
    for item in value:
        try:
            days.add(date.fromisoformat(item if isinstance(item, str) and len(item) == 10 else ""))
        except ValueError:
            raise HoursInvalid(f"{str(item)[:20]!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-25.",
                               "invalid_holiday", "holidays") from None
    return [d.isoformat() for d in sorted(days)]


def schedule_of(tenant: Tenant) -> Schedule:
    """The tenant's hours. Stored hours that do not parse (written around the checks) count as always open, as
    stores were before they had hours, and are logged."""
    if not tenant.business_hours:
        return ALWAYS_OPEN
    try:
        zone = ZoneInfo(timezone_clean(tenant.timezone or "UTC"))
        week = {DAYS.index(day): tuple(_intervals(day, intervals))
                for day, intervals in schedule_clean(tenant.business_hours).items()}
        holidays = frozenset(date.fromisoformat(d) for d in holidays_clean(tenant.holidays))
    except (HoursInvalid, ZoneInfoNotFoundError) as exc:
        log.warning("store %s: its business hours are not valid (%s); counted as always open", tenant.pk, exc)
        return ALWAYS_OPEN
    return Schedule(zone, week, holidays, False)


# --- open or closed ------------------------------------------------------------------------------------------


def _instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time: its first occurrence when the clocks repeat it, the moment they
    change when they skip it."""
    naive = datetime.combine(day, clock)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # Skipped: the change lies between the time read with the offset after it and with the one before.
    low = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    high = int(instant.timestamp())
    after = instant.astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def open_spans(schedule: Schedule, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The store's open periods that end after `since`, as UTC (start, end), in order, adjacent ones joined
    (Monday 09:00-24:00 and Tuesday 00:00-12:00 are one). Nothing for an always-open store."""
    if schedule.always_open:
        return
    zone = schedule.zone
    day = since.astimezone(zone).date() - timedelta(days=1)
    pending: tuple[datetime, datetime] | None = None
    for _ in range(HORIZON_DAYS):
        if day not in schedule.holidays:
            for opens, closes in schedule.week.get(day.weekday(), ()):
                start = _instant(day, opens, zone)
                end = (_instant(day + timedelta(days=1), time(0), zone) if closes is None
                       else _instant(day, closes, zone))
                if end <= since or end <= start:
                    continue
                if pending and start <= pending[1]:
                    pending = (pending[0], max(pending[1], end))
                    continue
                if pending:
                    yield pending
                pending = (start, end)
        day += timedelta(days=1)
    if pending:
        yield pending


def is_open(schedule: Schedule, at: datetime) -> bool:
    if schedule.always_open:
        return True
    span = next(open_spans(schedule, at), None)
    return span is not None and span[0] <= at


def opens_at(schedule: Schedule, at: datetime) -> datetime | None:
    """The first moment from `at` on when the store is open: `at` itself while it is; None when it never opens
    within HORIZON_DAYS (holidays all year)."""
    if schedule.always_open:
        return at
    span = next(open_spans(schedule, at), None)
    return None if span is None else max(span[0], at)


def back_at(schedule: Schedule, at: datetime) -> datetime | None:
    """When a closed store opens again; None while it is open (or when it never does)."""
    opening = opens_at(schedule, at)
    return opening if opening is not None and opening > at else None


def business_deadline(schedule: Schedule, start: datetime, minutes: int) -> datetime | None:
    """`minutes` of open time counted from `start` (from the next opening when it is closed); None when the
    store does not open within HORIZON_DAYS."""
    if schedule.always_open:
        return start + timedelta(minutes=minutes)
    left = timedelta(minutes=minutes)
    for span_start, span_end in open_spans(schedule, start):
        begin = max(span_start, start)
        if begin + left <= span_end:
            return begin + left
        left -= span_end - begin
    return None


# --- what the platform does with them --------------------------------------------------------------------------


def first_response_due(tenant: Tenant, at: datetime) -> datetime | None:
    """The first-response target of a hand-off at `at`: Tenant.first_response_minutes of business hours (None:
    the store has no target)."""
    if tenant.first_response_minutes is None:
        return None
    return business_deadline(schedule_of(tenant), at, tenant.first_response_minutes)


def first_response_mark(conversation: Conversation, at: datetime | None = None) -> None:
    """An agent's visible message in a locked conversation: the first one since its hand-off is its first
    response (Conversation.first_response_at; saved with the message by journal.message_append)."""
    if conversation.handoff_code and conversation.first_response_at is None:
        conversation.first_response_at = at or timezone.now()


def availability(tenant_id: int, at: datetime | None = None) -> dict:
    """What the widget's `session` and `status` frames say of who can answer: `agents_online`, and for a store
    that keeps business hours `open` and, while closed, `back_at` (ISO 8601, UTC)."""
    found = {"agents_online": presence.agents_online(tenant_id)}
    tenant = Tenant.objects.filter(pk=tenant_id).only("timezone", "business_hours", "holidays").first()
    if tenant is None or not tenant.business_hours:
        return found
    at = at or timezone.now()
    schedule = schedule_of(tenant)
    back = back_at(schedule, at)
    found["open"] = is_open(schedule, at)
    if not found["open"] and back is not None:
        found["back_at"] = back.isoformat().replace("+00:00", "Z")
    return found


# --- the notice of a hand-off while the team is away --------------------------------------------------------

# "We're back {when} ({zone})." in the platform's six languages (English for any other); {when} is one of
# today / tomorrow / weekday (within a week) / date, each with {time} (HH:MM in the store's time zone).
BACK_TEXTS = {
    "en": {"sentence": "We're back {when} ({zone}).", "today": "today at {time}", "tomorrow": "tomorrow at {time}",
           "weekday": "on {weekday} at {time}", "date": "on {month} {day} at {time}"},
    "es": {"sentence": "Volvemos {when} ({zone}).", "today": "hoy a las {time}", "tomorrow": "mañana a las {time}",
           "weekday": "el {weekday} a las {time}", "date": "el {day} de {month} a las {time}"},
    "de": {"sentence": "Wir sind {when} wieder da ({zone}).", "today": "heute um {time} Uhr",
           "tomorrow": "morgen um {time} Uhr", "weekday": "am {weekday} um {time} Uhr",
           "date": "am {day}. {month} um {time} Uhr"},
    "fr": {"sentence": "Nous serons de retour {when} ({zone}).", "today": "aujourd'hui à {time}",
           "tomorrow": "demain à {time}", "weekday": "{weekday} à {time}", "date": "le {day} {month} à {time}"},
    "it": {"sentence": "Torniamo {when} ({zone}).", "today": "oggi alle {time}", "tomorrow": "domani alle {time}",
           "weekday": "{weekday} alle {time}", "date": "il {day} {month} alle {time}"},
    "pt": {"sentence": "Voltamos {when} ({zone}).", "today": "hoje às {time}", "tomorrow": "amanhã às {time}",
           "weekday": "{weekday} às {time}", "date": "em {day} de {month} às {time}"},
}


def back_line(schedule: Schedule, back: datetime, language: str, now: datetime) -> str:
    """"We're back on Monday at 09:00 (Europe/Berlin)." in `language` (English when the platform has none),
    the time in the store's zone: the notice is stored text, read by a visitor wherever she is."""
    words = wording.words(BACK_TEXTS, language)
    local, today = back.astimezone(schedule.zone), now.astimezone(schedule.zone).date()
    days = (local.date() - today).days
    kind = "today" if days <= 0 else "tomorrow" if days == 1 else "weekday" if days < 7 else "date"
    when = words[kind].format(time=local.strftime("%H:%M"), day=local.day,
                              weekday=wording.words(wording.WEEKDAYS, language)[local.weekday()],
                              month=wording.words(wording.MONTHS, language)[local.month - 1])
    return words["sentence"].format(when=when, zone=schedule.zone.key)


def closed_notice(tenant: Tenant, language: str, back: datetime, now: datetime) -> str:
    """The hand-off notice while the team is away: the store's `no_agent_text` (it offers the e-mail form) in the
    conversation's language, and when the team is back."""
    language = language or tenant.main_language
    return f"{tenant.text('no_agent_text', language)} {back_line(schedule_of(tenant), back, language, now)}"
