"""The export: the filtered conversations or messages as CSV or JSON Lines, streamed in batches, for
managers only and never with another store's rows."""
import csv
import io
import json

import pytest
from django.db import connections
from django.http import StreamingHttpResponse
from django.test import AsyncClient

from chatbot.review import queries as review
from chatbot.models import Message
from tests.chatbot.test_review import B_SECRET, build_world, filter_cases, logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def jsonl_rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def export(client, query: str):
    return client.get(f"/console/export/?{query}")


def test_conversation_rows_in_csv_and_jsonl_match_every_filter(client, world):
    logged_in(client, world["mia"])
    for query, expected in filter_cases(world):
        want = {world[c].id for c in expected}
        as_csv = export(client, f"{query}&format=csv&rows=conversation")
        assert as_csv["Content-Type"] == "text/csv; charset=utf-8"
        assert {int(r["id"]) for r in csv_rows(body(as_csv))} == want, query
        as_jsonl = export(client, f"{query}&format=jsonl&rows=conversation")
        assert {r["id"] for r in jsonl_rows(body(as_jsonl))} == want, query


def test_a_conversation_row_carries_its_fields(client, world):
    [row] = jsonl_rows(body(export(logged_in(client, world["mia"]), "language=es&format=jsonl")))
    assert row == {
        "id": world["c1"].id, "store": "alpha", "created_at": row["created_at"], "updated_at": row["updated_at"],
        "resolved_at": None, "status": "resolved", "handed_off": True, "handoff_code": "asked_for_person",
        "handoff_reason": "visitor asked for a person", "assignee": "", "csat": 1, "sentiment": "", "language": "es",
        "messages": 3, "visitor": world["c1"].visitor_id,
    }
    [as_csv] = csv_rows(body(export(client, "language=es&format=csv")))
    assert as_csv["handoff_reason"] == "visitor asked for a person" and as_csv["csat"] == "1"
    assert as_csv["handoff_code"] == "asked_for_person"
    assert list(as_csv) == list(review.CONVERSATION_COLUMNS)


def test_message_rows_match_the_filter_on_the_message_itself(client, world):
    logged_in(client, world["mia"])
    rows = jsonl_rows(body(export(client, "rows=message&format=jsonl&intent=refund")))
    assert [(r["conversation"], r["text"]) for r in rows] == [(world["c3"].id, "I want a refund now")]
    rows = jsonl_rows(body(export(client, "rows=message&format=jsonl&model=retrieval-minilm")))
    assert [r["id"] for r in rows] == [world["reply2"].id]
    assert rows[0]["visitor_rating"] == "down" and rows[0]["reply_to"] == world["reply2"].reply_to_id
    rows = csv_rows(body(export(client, "rows=message&format=csv&q=where+order")))
    assert [r["text"] for r in rows] == ["where is my order NW-100200"]
    assert json.loads(rows[0]["label_versions"]) == {"intent": "int-v1"}
    # Conversation filters pick the conversations; all their messages come, in id order.
    rows = jsonl_rows(body(export(client, "rows=message&format=jsonl&status=waiting")))
    assert [r["id"] for r in rows] == list(world["c3"].messages.order_by("id").values_list("id", flat=True))
    assert all(r["store"] == "alpha" for r in rows)


def test_every_message_row_of_a_filter_satisfies_it(client, world):
    logged_in(client, world["mia"])
    rows = jsonl_rows(body(export(client, "rows=message&format=jsonl&sentiment=negative&handed_off=yes")))
    assert rows and all(r["sentiment"] == "negative" for r in rows)
    assert {r["conversation"] for r in rows} == {world["c3"].id}
    rows = jsonl_rows(body(export(client, "rows=message&format=jsonl&language=es")))
    assert [r["text"] for r in rows] == ["¿Hacen envíos a México?"]  # UTF-8, not escaped


def test_the_export_never_holds_another_stores_rows(client, world):
    logged_in(client, world["mia"])
    for rows in ("conversation", "message"):
        for fmt in ("csv", "jsonl"):
            text = body(export(client, f"rows={rows}&format={fmt}"))
            assert B_SECRET not in text and "bravo" not in text
            assert text.count("alpha") >= 4
    assert export(client, "store=bravo").status_code == 404


@pytest.mark.parametrize("url", ["/console/export/", "/console/export/?format=jsonl&rows=message"])
def test_an_agent_gets_403(client, world, url):
    response = logged_in(client, world["ada"]).get(url)
    assert response.status_code == 403 and not isinstance(response, StreamingHttpResponse)


@pytest.mark.parametrize("query, detail", [
    ("format=xlsx", "`format` must be csv or jsonl"),
    ("format=", None),  # empty: the default, CSV
    ("rows=visitor", "`rows` must be conversation or message"),
    ("format=csv&status=closed", "`status` must be one of"),
])
def test_a_bad_format_or_filter_answers_400_with_a_clear_message(client, world, query, detail):
    response = export(logged_in(client, world["mia"]), query)
    if detail is None:
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        return
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert detail in response.content.decode()


def test_the_export_is_an_attachment_named_after_its_rows(client, world):
    response = export(logged_in(client, world["mia"]), "store=alpha&rows=message&format=jsonl")
    assert response["Content-Disposition"].startswith('attachment; filename="alpha-messages-')
    assert response["Content-Disposition"].endswith('.jsonl"')
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"


def test_batches_follow_ids_so_nothing_is_skipped_or_repeated(world):
    filters = review.Filters(tenant_ids=(world["alpha"].id,))
    batches = list(review.export_batches(filters, "message", batch=3))
    ids = [row["id"] for chunk in batches for row in chunk]
    assert all(len(chunk) <= 3 for chunk in batches) and len(batches) >= 4
    assert ids == list(Message.objects.filter(conversation__tenant=world["alpha"]).order_by("id")
                       .values_list("id", flat=True))
    chunks = list(review.export_lines(filters, "message", "csv", batch=3))
    assert len(chunks) == len(batches) + 1  # the header, then one chunk per batch
    assert len(csv_rows("".join(chunks))) == len(ids)


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(world):
    Message.objects.filter(pk=world["reply2"].pk).update(text="=HYPERLINK(\"http://evil.example\")")
    filters = review.Filters(tenant_ids=(world["alpha"].id,), model="retrieval-minilm")
    [row] = csv_rows("".join(review.export_lines(filters, "message", "csv")))
    assert row["text"] == "'=HYPERLINK(\"http://evil.example\")"
    [as_json] = jsonl_rows("".join(review.export_lines(filters, "message", "jsonl")))
    assert as_json["text"].startswith("=HYPERLINK")  # JSON carries the text as it is


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_streams_from_an_async_iterator():
    """Daphne serves the console: a sync iterator would be read whole into memory there."""
    from asgiref.sync import sync_to_async

    world = await sync_to_async(build_world)()
    client = AsyncClient()
    await client.aforce_login(world["mia"])
    response = await client.get("/console/export/?rows=message&format=jsonl")
    assert isinstance(response, StreamingHttpResponse) and response.is_async
    text = b"".join([chunk async for chunk in response.streaming_content]).decode()
    count = await sync_to_async(Message.objects.filter(conversation__tenant=world["alpha"]).count)()
    await sync_to_async(connections.close_all)()  # the streaming thread's connection, before the flush
    assert len(jsonl_rows(text)) == count
