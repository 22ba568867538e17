"""Identity verification: the store's server signs the visitor's id; unsigned or wrongly signed identities
are refused where required, and a verified visitor finds her conversations on any device."""
from io import StringIO
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command

from chatbot.conversations import identity
from chatbot.asgi import application
from chatbot.models import Conversation, Visitor
from tests.chatbot.sockets import WIDGET_ORIGIN
from tests.factories import TenantFactory

db = database_sync_to_async
SECRET = "store-secret-0123456789abcdef0123456789abcdef"


def signed(user_id: str, secret: str = SECRET) -> str:
    return identity.identity_hash(secret, user_id)


async def connect(tenant, visitor: str = "", user_id: str | None = None, user_hash: str | None = None):
    query = f"key={tenant.public_key}" + (f"&visitor={quote(visitor)}" if visitor else "")
    if user_id is not None:
        query += f"&user_id={quote(user_id)}"
    if user_hash is not None:
        query += f"&user_hash={quote(user_hash)}"
    comm = WebsocketCommunicator(application, f"/ws/widget/?{query}", headers=[(b"origin", WIDGET_ORIGIN.encode())])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm, await comm.receive_json_from(timeout=5)


async def refused_with(comm) -> int:
    out = await comm.receive_output(timeout=5)
    return out.get("code") if out["type"] == "websocket.close" else out


@pytest.fixture
async def store():
    return await db(TenantFactory)(allowed_origins=[WIDGET_ORIGIN], identity_secret=SECRET)


# --- the signature ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_hash_is_hex_hmac_sha256_of_the_id_under_the_secret():
    import hashlib
    import hmac

    assert signed("cust-42") == hmac.new(SECRET.encode(), b"cust-42", hashlib.sha256).hexdigest()
    tenant = TenantFactory(identity_secret=SECRET)
    assert identity.identity_verify(tenant, "cust-42", signed("cust-42")) == "cust-42"
    assert identity.identity_verify(tenant, "cust-42", signed("cust-42").upper()) == "cust-42"
    assert identity.identity_verify(tenant, "", "") == ""  # anonymous, where the store allows it


@pytest.mark.django_db
@pytest.mark.parametrize("user_id, user_hash", [
    ("cust-42", ""), ("cust-42", None), ("", "ab" * 32), ("cust-42", signed("cust-43")),
    ("cust-42", signed("cust-42", "another-secret")), ("cust-42", signed("cust-42")[:-1]),
    ("cust-42", signed("cust-42") + "0"), ("cust\x0042", signed("cust\x0042")), ("\ud800", "00" * 32),
    ("x" * 201, signed("x" * 201)), ("cust-42", "zz" * 32),
])
def test_unsigned_or_wrongly_signed_identities_are_refused(user_id, user_hash):
    tenant = TenantFactory(identity_secret=SECRET)
    with pytest.raises(identity.IdentityRefused) as refused:
        identity.identity_verify(tenant, user_id, user_hash)
    assert refused.value.code == "invalid_identity"


@pytest.mark.django_db
def test_a_store_without_a_secret_verifies_nobody():
    tenant = TenantFactory()
    with pytest.raises(identity.IdentityRefused):
        identity.identity_verify(tenant, "cust-42", identity.identity_hash("", "cust-42"))


def test_visitor_tokens_are_signed_per_tenant():
    token = identity.visitor_token_new(1)
    assert token.startswith("v_") and len(token) <= 64 and identity.clean_token(token) == token
    assert identity.visitor_token_signed(1, token)
    assert not identity.visitor_token_signed(2, token)  # another tenant's
    assert not identity.visitor_token_signed(1, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not identity.visitor_token_signed(1, "v_" + token.split(".")[0][2:])
    for garbage in ("\x00", "v_\ud800", "a b", "x" * 65, None, 5):
        assert identity.clean_token(garbage) == ""


# --- over the socket --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_store_that_requires_identity_refuses_anonymous_and_badly_signed_visitors(store):
    store.require_identity = True
    await db(store.save)()
    comm, error = await connect(store)
    assert (error["code"], await refused_with(comm)) == ("identity_required", 4401)
    comm, error = await connect(store, user_id="cust-42", user_hash=signed("cust-43"))
    assert (error["code"], await refused_with(comm)) == ("invalid_identity", 4401)
    comm, error = await connect(store, user_id="cust-42")
    assert (error["code"], await refused_with(comm)) == ("invalid_identity", 4401)
    comm, session = await connect(store, user_id="cust-42", user_hash=signed("cust-42"))
    assert session["type"] == "session" and session["conversation"] is None
    await comm.disconnect()
    assert not await db(Visitor.objects.exists)()


@pytest.mark.django_db(transaction=True)
async def test_a_wrong_signature_is_refused_even_where_identity_is_optional(store):
    comm, error = await connect(store, user_id="cust-42", user_hash=signed("cust-42", "guess"))
    assert (error["code"], await refused_with(comm)) == ("invalid_identity", 4401)
    comm, session = await connect(store)  # anonymous visitors are welcome here
    assert session["type"] == "session"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_verified_visitor_finds_her_conversation_on_any_device(store):
    laptop, session = await connect(store, user_id="cust-42", user_hash=signed("cust-42"))
    await laptop.send_json_to({"type": "message", "text": "where is order 1001?", "client_id": "l-1"})
    ack = await laptop.receive_json_from(timeout=5)
    await laptop.disconnect()
    visitor = await db(Visitor.objects.get)(tenant=store)
    assert visitor.external_id == "cust-42"

    phone, on_phone = await connect(store, user_id="cust-42", user_hash=signed("cust-42"))  # no token at all
    assert on_phone["visitor"] == visitor.token and on_phone["conversation"] == ack["conversation"]
    assert [m["text"] for m in on_phone["messages"]] == ["where is order 1001?"]
    await phone.send_json_to({"type": "message", "text": "and order 1002?", "client_id": "p-1"})
    assert (await phone.receive_json_from(timeout=5))["conversation"] == ack["conversation"]
    await phone.disconnect()
    assert await db(Visitor.objects.count)() == 1 and await db(Conversation.objects.count)() == 1

    # Another customer's signature on a device that holds cust-42's token: she is not cust-42.
    other, as_other = await connect(store, visitor=visitor.token, user_id="cust-7", user_hash=signed("cust-7"))
    assert as_other["conversation"] is None and as_other["visitor"] != visitor.token and as_other["messages"] == []
    await other.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_verified_visitors_token_without_her_identity_is_a_new_anonymous_visitor(store):
    comm, _ = await connect(store, user_id="cust-42", user_hash=signed("cust-42"))
    await comm.send_json_to({"type": "message", "text": "my address is 1 Main St", "client_id": "a-1"})
    await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    token = (await db(Visitor.objects.get)(tenant=store)).token
    shared, anonymous = await connect(store, visitor=token)  # she logged out of the store on a shared computer
    assert anonymous["visitor"] != token and anonymous["conversation"] is None and anonymous["messages"] == []
    await shared.send_json_to({"type": "message", "text": "hello", "client_id": "b-1"})
    assert (await shared.receive_json_from(timeout=5))["type"] == "ack"
    await shared.disconnect()
    assert await db(Visitor.objects.count)() == 2


@pytest.mark.django_db(transaction=True)
async def test_rotation_keeps_the_previous_secret_until_it_is_dropped(store):
    new = await db(identity.identity_secret_rotate)(store.slug)
    assert new != SECRET
    for secret in (SECRET, new):
        comm, session = await connect(store, user_id="cust-42", user_hash=signed("cust-42", secret))
        assert session["type"] == "session"
        await comm.disconnect()
    newest = await db(identity.identity_secret_rotate)(store.slug, keep_previous=False)
    comm, error = await connect(store, user_id="cust-42", user_hash=signed("cust-42", new))
    assert (error["code"], await refused_with(comm)) == ("invalid_identity", 4401)
    comm, session = await connect(store, user_id="cust-42", user_hash=signed("cust-42", newest))
    assert session["type"] == "session"
    await comm.disconnect()


@pytest.mark.django_db
def test_rotate_identity_secret_command_prints_the_new_secret_last():
    tenant = TenantFactory(identity_secret=SECRET)
    out = StringIO()
    call_command("rotate_identity_secret", tenant.slug, stdout=out)
    secret = out.getvalue().strip().splitlines()[-1]
    tenant.refresh_from_db()
    assert (tenant.identity_secret, tenant.identity_secret_previous) == (secret, SECRET)
    assert len(secret) == 64
    call_command("rotate_identity_secret", tenant.slug, "--drop-previous", stdout=StringIO())
    tenant.refresh_from_db()
    assert tenant.identity_secret_previous == "" and tenant.identity_secret != secret
    with pytest.raises(CommandError, match="unknown tenant"):
        call_command("rotate_identity_secret", "no-such-store", stdout=StringIO())
