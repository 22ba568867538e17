"""Insights: every figure on small hand-made conversations with known answers, the links behind them, and
who may open the page (a store's managers only, and only for their stores)."""
from datetime import date, datetime, timedelta, timezone as dt_timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db.models import Max
from django.test import Client

from chatbot.review import insights
from chatbot.review.insights import Period, period_parse
from chatbot.models import Conversation, ConversationTransition, Feedback, Message
from tests.factories import TenantFactory, UserFactory, VisitorFactory, agent_of, handoff_code

S = Conversation.Status
DAY = date(2025, 3, 3)
PERIOD = Period(DAY, DAY + timedelta(days=6))


def at(day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    """A moment on the `day`-th day of PERIOD (0: its first day)."""
    return datetime.combine(DAY + timedelta(days=day), datetime.min.time(), tzinfo=dt_timezone.utc) + timedelta(
        hours=hour, minutes=minute, seconds=second)


class Story:
    """Hand-made conversations of one store at chosen times (auto_now_add stamps are overwritten)."""

    def __init__(self, tenant):
        self.tenant = tenant

    def conversation(self, when: datetime, visitor=None, status: str = S.BOT, **fields) -> Conversation:
        visitor = visitor or VisitorFactory(tenant=self.tenant)
        if status == S.RESOLVED:
            fields.setdefault("resolved_at", when + timedelta(minutes=30))
        conversation = Conversation.objects.create(tenant=self.tenant, visitor=visitor, status=status, **fields)
        Conversation.objects.filter(pk=conversation.pk).update(created_at=when, last_message_at=when)
        conversation.refresh_from_db()
        return conversation

    def message(self, conversation: Conversation, sender: str, text: str, when: datetime, **fields) -> Message:
        seq = (conversation.messages.aggregate(top=Max("seq"))["top"] or 0) + 1
        message = Message.objects.create(conversation=conversation, seq=seq, sender=sender, text=text, **fields)
        Message.objects.filter(pk=message.pk).update(created_at=when)
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=when, last_seq=seq)
        message.created_at = when
        return message

    def asks(self, conversation, text: str, when: datetime, intent: str = "", sentiment: str = "neutral",
             language: str = "en") -> Message:
        return self.message(conversation, "visitor", text, when, intent=intent, sentiment=sentiment,
                            language=language)

    def answers(self, question: Message, text: str = "Here you go.", delay: float = 2, fallback: bool = False,
                grounding: list | None = None, model_version: str = "retrieval-minilm") -> Message:
        return self.message(question.conversation, "bot", text, question.created_at + timedelta(seconds=delay),
                            reply_to=question, handoff_reason="no knowledge entry close enough" if fallback else "",
                            handoff_code="fallback" if fallback else "",
                            grounding=grounding or [], model_version=model_version)

    def exchange(self, conversation, text: str, when: datetime, intent: str = "", **answer) -> tuple[Message, Message]:
        question = self.asks(conversation, text, when, intent=intent)
        return question, self.answers(question, **answer)

    def hand_off(self, question: Message, reason: str, delay: float = 1) -> Message:
        """A hand-off as the policy writes it: `reason` (its words) stored with its code."""
        conversation = question.conversation
        when = question.created_at + timedelta(seconds=delay)
        code = handoff_code(reason)
        self.transition(conversation, S.BOT, S.WAITING, when, reason)
        Conversation.objects.filter(pk=conversation.pk).update(handoff_code=code, handoff_reason=reason)
        return self.message(conversation, "system", "Handing you over.", when, reply_to=question,
                            handoff_code=code, handoff_reason=reason)

    def transition(self, conversation, from_status: str, to_status: str, when: datetime, reason: str = ""):
        row = ConversationTransition.objects.create(conversation=conversation, from_status=from_status,
                                                    to_status=to_status, reason=reason)
        ConversationTransition.objects.filter(pk=row.pk).update(created_at=when)
        return row

    def rate(self, reply: Message, rating: str, source: str = "visitor", correction: str = "", agent=None):
        return Feedback.objects.create(message=reply, source=source, rating=rating, correction=correction,
                                       agent=agent)


@pytest.fixture
def story(db):
    return Story(TenantFactory(name="Alpha Outdoor", slug="alpha"))


# --- the period ---------------------------------------------------------------------------------


def test_period_defaults_to_the_last_30_days_and_tolerates_bad_input():
    today = date(2025, 3, 31)
    assert period_parse(None, None, today) == Period(date(2025, 3, 2), today)
    assert period_parse("2025-03-10", "2025-03-01", today) == Period(date(2025, 3, 1), date(2025, 3, 10))
    assert period_parse("yesterday", "2025-03-05", today) == Period(date(2025, 2, 4), date(2025, 3, 5))
    assert period_parse("2020-01-01", "2025-03-31", today).start == date(2024, 3, 31)  # at most 366 days
    assert len(Period(DAY, DAY).days) == 1 and PERIOD.days[-1] == date(2025, 3, 9)


# --- the figures ------------------------------------------------------------------------------


def test_conversations_per_day_count_the_period_only_and_fill_empty_days(story):
    for day, hour in [(0, 9), (0, 23), (2, 0), (6, 23)]:
        story.conversation(at(day, hour, 59))
    handed = story.conversation(at(2, 12))
    story.hand_off(story.asks(handed, "a person please", at(2, 12)), "visitor asked for a person")
    story.conversation(at(-1, 23, 59))  # the day before
    story.conversation(at(7, 0, 0))  # the day after
    other = Story(TenantFactory())
    other.conversation(at(0))

    daily = insights.conversations_daily(story.tenant.id, PERIOD)

    assert [(r["day"], r["total"], r["handed_off"]) for r in daily] == [
        (DAY, 2, 0), (DAY + timedelta(1), 0, 0), (DAY + timedelta(2), 2, 1), (DAY + timedelta(3), 0, 0),
        (DAY + timedelta(4), 0, 0), (DAY + timedelta(5), 0, 0), (DAY + timedelta(6), 1, 0)]


def test_bot_resolution_is_honest_and_shown_beside_what_visitors_confirmed(story):
    s = story
    # 1. Answered by the bot, thumbs up from the visitor: resolved and confirmed.
    c1 = s.conversation(at(0))
    s.rate(s.exchange(c1, "How long is shipping?", at(0), intent="shipping")[1], "up")
    # 2. Answered, then handed off (rated 5 by the visitor afterwards): not the bot's, but confirmed.
    c2 = s.conversation(at(0), status=S.RESOLVED, csat=5)
    q2, _ = s.exchange(c2, "Where is my order?", at(0), intent="order_status")
    s.hand_off(s.asks(c2, "This is useless", at(0, 10, 5), intent="complaint"), "negative sentiment for 2 turns")
    # 3. Answered but rated down (by an agent), CSAT 3: neither.
    c3 = s.conversation(at(1), status=S.RESOLVED, csat=3)
    s.rate(s.exchange(c3, "Can I return shoes?", at(1), intent="returns")[1], "down", source="agent")
    # 4. Answered, but the visitor came back 3 days later on the same intent: not resolved...
    visitor = VisitorFactory(tenant=s.tenant)
    c4 = s.conversation(at(1), visitor=visitor, status=S.RESOLVED)
    s.exchange(c4, "Do you ship to Canada?", at(1), intent="shipping_abroad")
    # 5. ...while the return itself, answered with nothing after it, is.
    c5 = s.conversation(at(4), visitor=visitor, status=S.RESOLVED)
    s.exchange(c5, "Canada shipping, again?", at(4), intent="shipping_abroad")
    # 6. Back after 8 days on the same intent (window closed): resolved. Its return is outside the period.
    late = VisitorFactory(tenant=s.tenant)
    c6 = s.conversation(at(2), visitor=late, status=S.RESOLVED)
    s.exchange(c6, "Gift cards?", at(2), intent="gift_cards")
    s.exchange(s.conversation(at(10, 11), visitor=late), "Gift cards!", at(10, 11), intent="gift_cards")
    # 7. Back 2 days later on another intent: resolved (and so is the other visit).
    other = VisitorFactory(tenant=s.tenant)
    c7 = s.conversation(at(2), visitor=other, status=S.RESOLVED)
    s.exchange(c7, "Opening hours?", at(2), intent="hours")
    s.exchange(s.conversation(at(4), visitor=other), "Do you sell tents?", at(4), intent="products")
    # 8. Only fallback replies: the bot answered nothing.
    c8 = s.conversation(at(3))
    s.exchange(c8, "Blorp?", at(3), intent="", fallback=True)
    # 9. An agent took it over without a hand-off: people resolved it, not the bot.
    c9 = s.conversation(at(3), status=S.RESOLVED, csat=4)
    s.exchange(c9, "Invoice please", at(3), intent="invoice")
    s.transition(c9, S.BOT, S.HUMAN, at(3, 10, 1), "taken over")

    daily = insights.conversations_daily(s.tenant.id, PERIOD)
    summary = insights.resolution_summary(daily)

    assert summary["conversations"] == 10
    # Resolved: 1, 5, 6, 7 and 7's other visit. Confirmed: 1 (thumbs up), 2 (CSAT 5), 9 (CSAT 4).
    assert (summary["bot_resolved"], summary["confirmed"], summary["handed_off"]) == (5, 3, 1)
    assert summary["bot_resolution_rate"] == 0.5 and summary["confirmed_rate"] == 0.3
    assert summary["handoff_rate"] == 0.1
    resolved_by_day = {r["day"]: r["bot_resolved"] for r in daily if r["total"]}
    assert resolved_by_day == {DAY: 1, DAY + timedelta(1): 0, DAY + timedelta(2): 2, DAY + timedelta(3): 0,
                               DAY + timedelta(4): 2}
    resolved = insights.conversation_outcomes(Conversation.objects.filter(tenant=s.tenant)).filter(
        insights.BOT_RESOLVED)
    assert c4 not in resolved and c5 in resolved and c6 in resolved and c7 in resolved


def test_a_thumbs_up_from_an_agent_is_not_the_visitor_confirming(story):
    c = story.conversation(at(0))
    story.rate(story.exchange(c, "Hi", at(0), intent="greeting")[1], "up", source="agent",
               agent=agent_of(story.tenant))
    assert insights.resolution_summary(insights.conversations_daily(story.tenant.id, PERIOD))["confirmed"] == 0


def test_handoff_reasons_are_grouped_by_their_code(story):
    s = story
    for confidence in ("0.31", "0.22"):
        c = s.conversation(at(0))
        s.hand_off(s.asks(c, "hm", at(0)), f"low intent confidence ({confidence})")
    twice = s.conversation(at(1))
    s.hand_off(s.asks(twice, "a person", at(1)), "visitor asked for a person")
    s.transition(twice, S.WAITING, S.BOT, at(1, 11), "handed back to the bot")
    s.hand_off(s.asks(twice, "a person again", at(1, 12)), "visitor asked for a person")
    c = s.conversation(at(2))
    s.hand_off(s.asks(c, "?", at(2)), "2 fallbacks in a row")
    c = s.conversation(at(2))
    s.hand_off(s.asks(c, "¿Hola?", at(2)), "language: es")
    outside = s.conversation(at(9))
    s.hand_off(s.asks(outside, "later", at(9)), "out-of-scope request")

    reasons = insights.handoff_reasons(s.tenant.id, PERIOD)

    assert [(r["reason"], r["label"], r["conversations"]) for r in reasons] == [
        ("low_confidence", "Low intent confidence", 2),
        ("asked_for_person", "Asked for a person", 1),
        ("language", "Language", 1),
        ("repeated_fallback", "Repeated fallbacks", 1),
    ]


def test_handoff_reasons_count_the_code_whatever_the_words_say(story):
    s = story
    for detail in ("refund API timed out", "the order service said 503"):
        c = s.conversation(at(0))
        Conversation.objects.filter(pk=c.pk).update(handoff_code="action_failed", handoff_reason=detail)
    assert insights.handoff_reasons(s.tenant.id, PERIOD) == [
        {"reason": "action_failed", "label": "An action failed", "conversations": 2}]


def test_response_times_median_and_p90_of_bot_agent_and_resolution(story):
    s = story
    for delay in (2, 4, 10):
        s.exchange(s.conversation(at(0)), "Shipping?", at(0), delay=delay)
    handed = s.conversation(at(1), status=S.RESOLVED, resolved_at=at(1, 12))
    question = s.asks(handed, "I want a person", at(1))
    s.hand_off(question, "visitor asked for a person", delay=1)
    s.message(handed, "agent", "A note first", at(1, 10, 0, 30), private=True)
    s.message(handed, "agent", "Hi, Ada here", at(1, 10, 1, 1))
    s.message(handed, "agent", "Anything else?", at(1, 10, 5))
    s.transition(handed, S.WAITING, S.HUMAN, at(1, 10, 0, 40), "taken over")
    s.transition(handed, S.HUMAN, S.RESOLVED, at(1, 12), "resolved by an agent")

    times = insights.response_times(s.tenant.id, PERIOD)

    assert times["bot_first_response"] == {"n": 3, "median_s": 4.0, "p90_s": 8.8}
    assert times["human_first_response"] == {"n": 1, "median_s": 60.0, "p90_s": 60.0}
    assert times["resolution"] == {"n": 1, "median_s": 7200.0, "p90_s": 7200.0}


def test_the_sqlite_percentiles_match_postgresql_percentile_cont():
    assert insights._quantile([2.0, 4.0, 10.0], 0.5) == 4.0
    assert insights._quantile([2.0, 4.0, 10.0], 0.9) == pytest.approx(8.8)
    assert insights._quantile([5.0], 0.9) == 5.0
    assert insights._quantile([], 0.5) is None


def test_csat_distribution_and_average(story):
    for score in (5, 5, 4, 1):
        story.conversation(at(0), status=S.RESOLVED, csat=score)
    story.conversation(at(0), status=S.RESOLVED)
    story.conversation(at(8), status=S.RESOLVED, csat=1)  # outside
    csat = insights.csat_summary(story.tenant.id, PERIOD)
    assert [d["conversations"] for d in csat["distribution"]] == [1, 0, 0, 1, 2]
    assert csat["rated"] == 4 and csat["average"] == 3.75


def test_sentiment_per_day_counts_visitor_messages(story):
    c = story.conversation(at(0))
    for sentiment, day in [("negative", 0), ("negative", 0), ("positive", 0), ("neutral", 1), ("", 1)]:
        story.asks(c, "text", at(day), sentiment=sentiment)
    story.message(c, "bot", "reply", at(0))
    story.asks(c, "later", at(7), sentiment="negative")
    daily = insights.sentiment_daily(story.tenant.id, PERIOD)
    assert daily[0] == {"day": DAY, "negative": 2, "neutral": 0, "positive": 1}
    assert daily[1] == {"day": DAY + timedelta(1), "negative": 0, "neutral": 1, "positive": 0}
    assert sum(r["negative"] for r in daily) == 2


def test_top_intents_and_languages(story):
    c = story.conversation(at(0))
    for intent, language in [("shipping", "en"), ("shipping", "es"), ("refund", "en"), ("", "en"),
                             ("shipping", "")]:
        story.asks(c, "text", at(0), intent=intent, language=language)
    assert insights.top_values(story.tenant.id, PERIOD, "intent") == [
        {"value": "shipping", "messages": 3}, {"value": "refund", "messages": 1}]
    assert insights.top_values(story.tenant.id, PERIOD, "language") == [
        {"value": "en", "messages": 3}, {"value": "es", "messages": 1}]


def query_of(url: str) -> dict:
    parts = urlsplit(url)
    assert parts.path == "/console/review/"
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_every_chart_point_links_to_its_conversations_on_the_review_page(story):
    s = story
    c = s.conversation(at(2))
    q = s.asks(c, "hm", at(2), intent="shipping", sentiment="negative")
    s.hand_off(q, "low intent confidence (0.2)")
    Conversation.objects.filter(pk=c.pk).update(csat=2, status=S.RESOLVED, resolved_at=at(2, 11))
    Message.objects.filter(pk=q.pk).update(language="de")

    data = insights.insights(s.tenant, PERIOD)
    charts = data["charts"]

    for name, chart in charts.items():
        for dataset in chart["datasets"]:
            assert len(dataset["links"]) == len(dataset["data"]) == len(chart["labels"]), name
    day = {"store": "alpha", "date_from": "2025-03-05", "date_to": "2025-03-05"}
    span = {"store": "alpha", "date_from": "2025-03-03", "date_to": "2025-03-09"}
    assert query_of(charts["conversations"]["datasets"][1]["links"][2]) == {**day, "handed_off": "yes"}
    assert query_of(charts["conversations"]["datasets"][0]["links"][2]) == {**day, "handed_off": "no"}
    assert query_of(charts["sentiment"]["datasets"][0]["links"][2]) == {**day, "sentiment": "negative"}
    assert query_of(charts["reasons"]["datasets"][0]["links"][0]) == {
        **span, "handed_off": "yes", "reason": "low_confidence"}
    assert query_of(charts["csat"]["datasets"][0]["links"][1]) == {**span, "csat": "2"}
    assert query_of(charts["intents"]["datasets"][0]["links"][0]) == {**span, "intent": "shipping"}
    assert query_of(charts["languages"]["datasets"][0]["links"][0]) == {**span, "language": "de"}
    assert query_of(data["links"]["resolution"]) == {**span, "status": "resolved"}
    assert query_of(data["links"]["confirmed"]) == {**span, "csat": "high"}
    assert charts["csat"]["datasets"][0]["data"] == [0, 1, 0, 0, 0]


# --- the page and who may open it ------------------------------------------------------------


@pytest.fixture
def stores(db):
    alpha = TenantFactory(name="Alpha Outdoor", slug="alpha")
    bravo = TenantFactory(name="Bravo Hidden Store", slug="bravo")
    Story(bravo).exchange(Story(bravo).conversation(at(0)), "bravo-secret-question", at(0), intent="bravo_intent")
    return {"alpha": alpha, "bravo": bravo,
            "manager": agent_of(alpha, role="manager", username="amy"),
            "agent": agent_of(alpha, username="ada"),
            "b_manager": agent_of(bravo, role="manager", username="bea")}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_sees_her_stores_insights_with_charts_and_data(stores):
    story = Story(stores["alpha"])
    story.exchange(story.conversation(at(0)), "Where is my parcel?", at(0), intent="order_status")
    response = client_of(stores["manager"]).get("/console/insights/", {"from": "2025-03-03", "to": "2025-03-09"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="insights-charts"' in html and 'data-chart="conversations"' in html
    assert "/static/chatbot/vendor/chart.umd.min.js" in html and "/static/chatbot/insights.js" in html
    assert "<script>" not in html  # data as JSON (json_script), code from files: no inline script
    assert "order_status" in html and "Alpha Outdoor" in html
    assert response.context["data"]["summary"]["conversations"] == 1
    assert '>Insights</a>' in html


def test_an_agent_cannot_open_insights(stores):
    client = client_of(stores["agent"])
    for url in ("/console/insights/", "/console/insights/?tenant=alpha", "/console/insights/fix/?tenant=alpha"):
        response = client.get(url)
        assert response.status_code == 403, url
    assert client.post("/console/insights/fix/recompute/", {"tenant": "alpha"}).status_code == 403
    assert ">Insights</a>" not in client.get("/console/").content.decode()


def test_a_manager_never_sees_another_stores_insights(stores):
    client = client_of(stores["manager"])
    theirs = client.get("/console/insights/", {"tenant": "bravo"})
    missing = client.get("/console/insights/", {"tenant": "no-such-store"})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    mine = client.get("/console/insights/", {"from": "2025-03-01", "to": "2025-03-31"}).content.decode()
    assert "bravo" not in mine.lower() and "Bravo Hidden" not in mine


def test_a_manager_of_two_stores_picks_one_and_the_other_is_not_mixed_in(stores):
    both = stores["manager"]
    agent_of(stores["bravo"], role="manager", username=both.username)
    client = client_of(both)
    html = client.get("/console/insights/", {"tenant": "bravo", "from": "2025-03-01", "to": "2025-03-31"})
    assert html.status_code == 200 and "bravo_intent" in html.content.decode()
    assert '<option value="alpha"' in html.content.decode()
    alpha = client.get("/console/insights/", {"tenant": "alpha", "from": "2025-03-01", "to": "2025-03-31"})
    assert "bravo_intent" not in alpha.content.decode()


def test_a_user_without_a_store_is_refused(db):
    response = client_of(UserFactory()).get("/console/insights/")
    assert response.status_code == 403
