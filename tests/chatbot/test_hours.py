"""Business hours (chatbot.conversations.hours): open or closed, the next opening, holidays, the clocks changing
(Europe/Berlin springs forward on 2026-03-29, America/New_York falls back on 2026-11-01), the first-response
target counted in open time across a weekend, what a manager may write, and what the widget is told."""
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async

from chatbot.conversations import hours
from chatbot.conversations.presence import presence_join
from chatbot.models import Tenant
from tests.factories import TenantFactory, agent_of

WEEKDAYS = {day: [["09:00", "12:30"], ["13:30", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def schedule(business_hours=None, zone="Europe/Berlin", holidays=(), minutes=None) -> hours.Schedule:
    return hours.schedule_of(store(business_hours, zone, holidays, minutes))


def store(business_hours=None, zone="Europe/Berlin", holidays=(), minutes=None) -> Tenant:
    """An unsaved tenant: the functions read only its fields."""
    return Tenant(name="Shop", timezone=zone, business_hours=WEEKDAYS if business_hours is None else business_hours,
                  holidays=list(holidays), first_response_minutes=minutes)


# --- open or closed, and the next opening ------------------------------------------------------------------------


@pytest.mark.parametrize("moment, is_open, opens", [
    (utc(2026, 6, 10, 7, 0), True, utc(2026, 6, 10, 7, 0)),     # Wed 09:00 CEST: opens this minute
    (utc(2026, 6, 10, 10, 45), False, utc(2026, 6, 10, 11, 30)),  # 12:45, lunch: back at 13:30
    (utc(2026, 6, 10, 14, 59), True, utc(2026, 6, 10, 14, 59)),  # 16:59
    (utc(2026, 6, 10, 15, 0), False, utc(2026, 6, 11, 7, 0)),    # 17:00 closes: Thursday 09:00
    (utc(2026, 6, 12, 16, 0), False, utc(2026, 6, 15, 7, 0)),    # Friday evening: Monday 09:00
    (utc(2026, 6, 13, 12, 0), False, utc(2026, 6, 15, 7, 0)),    # Saturday
    (utc(2026, 6, 15, 6, 59), False, utc(2026, 6, 15, 7, 0)),    # Monday 08:59
])
def test_open_and_the_next_opening_in_the_stores_time_zone(moment, is_open, opens):
    hours_ = schedule()
    assert hours.is_open(hours_, moment) is is_open
    assert hours.opens_at(hours_, moment) == opens
    assert hours.back_at(hours_, moment) == (None if is_open else opens)


def test_an_empty_schedule_is_always_open():
    hours_ = schedule({})
    moment = utc(2026, 12, 25, 3, 0)
    assert hours_.always_open and hours.is_open(hours_, moment)
    assert hours.back_at(hours_, moment) is None
    assert hours.business_deadline(hours_, moment, 90) == moment + timedelta(minutes=90)


def test_holidays_are_closed_all_day():
    hours_ = schedule(holidays=["2026-12-24", "2026-12-25"])  # Thursday and Friday
    assert not hours.is_open(hours_, utc(2026, 12, 24, 10, 0))
    assert hours.opens_at(hours_, utc(2026, 12, 23, 17, 0)) == utc(2026, 12, 28, 8, 0)  # Monday 09:00 CET
    assert hours.is_open(hours_, utc(2026, 12, 23, 10, 0))


def test_a_day_ending_at_midnight_joins_the_next_days_morning():
    hours_ = schedule({"mon": [["20:00", "24:00"]], "tue": [["00:00", "02:00"]]}, zone="UTC")
    spans = list(hours.open_spans(hours_, utc(2026, 6, 15, 0, 0)))
    assert spans[0] == (utc(2026, 6, 15, 20, 0), utc(2026, 6, 16, 2, 0))
    assert hours.is_open(hours_, utc(2026, 6, 16, 0, 0))


def test_a_store_that_never_opens_has_no_next_opening():
    hours_ = schedule({"mon": [["09:00", "10:00"]]}, holidays=[
        (datetime(2026, 1, 5) + timedelta(weeks=w)).date().isoformat() for w in range(60)])
    assert hours.opens_at(hours_, utc(2026, 1, 1)) is None
    assert hours.business_deadline(hours_, utc(2026, 1, 1), 10) is None


# --- the clocks changing -------------------------------------------------------------------------------------------


def test_berlin_opens_at_nine_local_time_on_both_sides_of_the_spring_change():
    hours_ = schedule()
    assert hours.opens_at(hours_, utc(2026, 3, 27, 0, 0)) == utc(2026, 3, 27, 8, 0)  # Fri 09:00 CET (+1)
    assert hours.opens_at(hours_, utc(2026, 3, 27, 17, 0)) == utc(2026, 3, 30, 7, 0)  # Mon 09:00 CEST (+2)


def test_berlin_counts_the_short_night_as_it_really_is():
    sunday = {"sun": [["00:00", "24:00"]]}
    hours_ = schedule(sunday)
    spans = list(hours.open_spans(hours_, utc(2026, 3, 28, 12, 0)))
    start, end = spans[0]
    assert (start, end) == (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0))
    assert end - start == timedelta(hours=23)
    # 00:30 local plus two hours of real time is 03:30 local: 02:00-03:00 never happened.
    due = hours.business_deadline(hours_, utc(2026, 3, 28, 23, 30), 120)
    assert due == utc(2026, 3, 29, 1, 30)
    assert due.astimezone(hours_.zone).strftime("%H:%M %Z") == "03:30 CEST"


def test_berlin_opening_at_a_time_the_clocks_skip_opens_when_they_change():
    hours_ = schedule({"sun": [["02:30", "05:00"]]})
    assert hours.opens_at(hours_, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST, the change
    assert hours.is_open(hours_, utc(2026, 3, 29, 1, 15))  # 03:15 local is after 02:30
    assert not hours.is_open(hours_, utc(2026, 3, 29, 0, 59))  # 01:59 CET


def test_new_york_counts_the_long_night_as_it_really_is():
    sunday = {"sun": [["00:00", "24:00"]]}
    hours_ = schedule(sunday, zone="America/New_York")
    start, end = next(hours.open_spans(hours_, utc(2026, 10, 31, 12, 0)))
    assert (start, end) == (utc(2026, 11, 1, 4, 0), utc(2026, 11, 2, 5, 0))
    assert end - start == timedelta(hours=25)
    # 00:30 EDT plus two hours is 01:30 EST, the second 01:30 of the night.
    due = hours.business_deadline(hours_, utc(2026, 11, 1, 4, 30), 120)
    assert due == utc(2026, 11, 1, 6, 30)
    assert due.astimezone(hours_.zone).strftime("%H:%M %Z") == "01:30 EST"


def test_new_york_opening_at_a_repeated_time_opens_at_its_first_occurrence():
    hours_ = schedule({"sun": [["01:30", "03:00"]]}, zone="America/New_York")
    start, end = next(hours.open_spans(hours_, utc(2026, 10, 31, 12, 0)))
    assert (start, end) == (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8, 0))  # 01:30 EDT to 03:00 EST


def test_new_york_opens_at_nine_local_time_on_both_sides_of_the_autumn_change():
    hours_ = schedule(zone="America/New_York")
    assert hours.opens_at(hours_, utc(2026, 10, 30, 4, 0)) == utc(2026, 10, 30, 13, 0)  # Fri 09:00 EDT (-4)
    assert hours.opens_at(hours_, utc(2026, 10, 30, 22, 0)) == utc(2026, 11, 2, 14, 0)  # Mon 09:00 EST (-5)


# --- the first-response target ---------------------------------------------------------------------------------------


def test_the_target_runs_over_the_weekend_in_business_hours_only():
    tenant = store(minutes=60)
    # Friday 16:30 CEST: 30 minutes on Friday, 30 on Monday morning.
    assert hours.first_response_due(tenant, utc(2026, 6, 12, 14, 30)) == utc(2026, 6, 15, 7, 30)
    # Saturday: the clock starts at Monday's opening.
    assert hours.first_response_due(tenant, utc(2026, 6, 13, 10, 0)) == utc(2026, 6, 15, 8, 0)
    # Over lunch: 12:00 + 60 minutes is 12:30 (30 min), then 13:30-14:00.
    assert hours.first_response_due(tenant, utc(2026, 6, 10, 10, 0)) == utc(2026, 6, 10, 12, 0)


def test_the_target_over_the_weekend_of_the_spring_change():
    tenant = store(minutes=90)
    # Friday 2026-03-27 16:30 CET (15:30Z): 30 minutes, then 60 from Monday 09:00 CEST (07:00Z).
    assert hours.first_response_due(tenant, utc(2026, 3, 27, 15, 30)) == utc(2026, 3, 30, 8, 0)


def test_the_target_over_the_weekend_of_the_autumn_change_in_new_york():
    tenant = store(minutes=90, zone="America/New_York")
    # Friday 2026-10-30 16:30 EDT (20:30Z): 30 minutes, then 60 from Monday 09:00 EST (14:00Z).
    assert hours.first_response_due(tenant, utc(2026, 10, 30, 20, 30)) == utc(2026, 11, 2, 15, 0)


def test_no_target_no_due_time():
    assert hours.first_response_due(store(minutes=None), utc(2026, 6, 10, 10, 0)) is None


# --- what a manager may write ------------------------------------------------------------------------------------


def test_a_valid_schedule_is_sorted_and_empty_days_dropped():
    assert hours.schedule_clean({"tue": [["13:00", "24:00"], ["08:00", "12:00"]], "sun": []}) == {
        "tue": [["08:00", "12:00"], ["13:00", "24:00"]]}
    assert hours.schedule_clean({}) == {} and hours.schedule_clean(None) == {}


@pytest.mark.parametrize("value, code, field", [
    ([["09:00", "17:00"]], "invalid_schedule", "business_hours"),
    ({"monday": [["09:00", "17:00"]]}, "invalid_schedule", "business_hours"),
    ({"mon": [["9:00", "17:00"]]}, "invalid_time", "mon"),
    ({"mon": [["09:00", "25:00"]]}, "invalid_time", "mon"),
    ({"mon": [["24:00", "24:00"]]}, "invalid_time", "mon"),
    ({"mon": [["17:00", "09:00"]]}, "invalid_time", "mon"),
    ({"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}, "overlapping_hours", "mon"),
    ({"mon": [["09:00"]]}, "invalid_schedule", "mon"),
    ({"mon": [], "tue": []}, "never_open", "business_hours"),
])
def test_a_schedule_that_cannot_work_is_refused_on_its_field(value, code, field):
    with pytest.raises(hours.HoursInvalid) as refused:
        hours.schedule_clean(value)
    assert (refused.value.code, refused.value.field) == (code, field)


def test_holidays_and_time_zones_are_checked():
    assert hours.holidays_clean(["2026-12-25", "2026-01-01", "2026-12-25"]) == ["2026-01-01", "2026-12-25"]
    for bad in (["25.12.2026"], ["2026-02-30"], "2026-12-25", [20261225]):
        with pytest.raises(hours.HoursInvalid):
            hours.holidays_clean(bad)
    assert hours.timezone_clean(" Europe/Berlin ") == "Europe/Berlin"
    for bad in ("Mars/Olympus", "", None, "CEST"):
        with pytest.raises(hours.HoursInvalid):
            hours.timezone_clean(bad)


def test_stored_hours_that_do_not_parse_count_as_always_open():
    assert schedule({"mon": [["nine", "five"]]}).always_open
    assert schedule(WEEKDAYS, zone="Nowhere/City").always_open


# --- what the visitor is told -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("language, now, expected", [
    ("en", utc(2026, 6, 10, 5, 0), "We're back today at 09:00 (Europe/Berlin)."),
    ("en", utc(2026, 6, 10, 16, 0), "We're back tomorrow at 09:00 (Europe/Berlin)."),
    ("de", utc(2026, 6, 12, 16, 0), "Wir sind am Montag um 09:00 Uhr wieder da (Europe/Berlin)."),
    ("es", utc(2026, 6, 12, 16, 0), "Volvemos el lunes a las 09:00 (Europe/Berlin)."),
    ("fr", utc(2026, 6, 12, 16, 0), "Nous serons de retour lundi à 09:00 (Europe/Berlin)."),
    ("it", utc(2026, 6, 12, 16, 0), "Torniamo lunedì alle 09:00 (Europe/Berlin)."),
    ("pt", utc(2026, 6, 12, 16, 0), "Voltamos segunda-feira às 09:00 (Europe/Berlin)."),
    ("nl", utc(2026, 6, 12, 16, 0), "We're back on Monday at 09:00 (Europe/Berlin)."),
])
def test_the_notice_says_when_the_team_is_back_in_the_visitors_language(language, now, expected):
    hours_ = schedule()
    assert hours.back_line(hours_, hours.back_at(hours_, now), language, now) == expected


def test_the_notice_gives_the_date_when_the_team_is_back_in_more_than_a_week():
    hours_ = schedule(holidays=[f"2026-12-{day}" for day in range(19, 28)])
    now = utc(2026, 12, 18, 17, 0)  # Friday 18:00 CET, then a long break
    assert hours.back_line(hours_, hours.back_at(hours_, now), "en", now) == \
        "We're back on December 28 at 09:00 (Europe/Berlin)."
    assert hours.back_line(hours_, hours.back_at(hours_, now), "es", now) == \
        "Volvemos el 28 de diciembre a las 09:00 (Europe/Berlin)."


@pytest.mark.django_db
def test_availability_adds_open_and_back_at_only_for_a_store_with_hours():
    always = TenantFactory()
    assert hours.availability(always.id) == {"agents_online": False}
    weekdays = TenantFactory(timezone="Europe/Berlin", business_hours=WEEKDAYS)
    assert hours.availability(weekdays.id, utc(2026, 6, 13, 12, 0)) == {
        "agents_online": False, "open": False, "back_at": "2026-06-15T07:00:00Z"}
    agent = agent_of(weekdays)
    presence_join(agent, "test-channel")
    assert hours.availability(weekdays.id, utc(2026, 6, 10, 8, 0)) == {"agents_online": True, "open": True}


@pytest.mark.django_db(transaction=True)
async def test_the_widget_is_told_the_store_is_closed_and_when_it_is_back():
    from tests.chatbot.sockets import widget_socket

    today = datetime.now(UTC).date()
    closed = await database_sync_to_async(TenantFactory)(  # around the clock, but not today and tomorrow
        timezone="UTC", business_hours={day: [["00:00", "24:00"]] for day in hours.DAYS},
        holidays=[today.isoformat(), (today + timedelta(days=1)).isoformat()], allowed_origins=["https://shop.example"])
    comm, session = await widget_socket(closed)
    assert session["open"] is False and session["agents_online"] is False
    assert session["back_at"] == f"{(today + timedelta(days=2)).isoformat()}T00:00:00Z"
    await comm.disconnect()
