"""Store actions benchmark, on the demo store and its own order system.

    .venv/bin/python bench/actions.py [--db /tmp/bench-actions.db] [--runs 40]

The demo store is seeded into its own SQLite database (DATABASE_URL to choose another), its intent model
trained unless one is active (MODELS_DIR), and its order system served by the project's own WSGI app on a
local port, connected as `make run` connects it. Sections:
- phrasings: 50 visitor conversations about an order, in the store's languages (en, es, de, fr), in three
  shapes: the order number in the first message (the bot asks for the e-mail); number and e-mail given in a
  later message after a first one without them; and the bot asking for each. Success: the conversation's
  last bot reply is that order's look-up (its why holds the order's number and state) and says its state.
- enumeration: 200 guesses of order numbers (every real one among them, with made-up e-mail addresses) from
  one address by unverified visitors who start a new chat each time the bot hands theirs off; counts the
  bot replies that disclose anything of an order (zero is the target), and the calls that reached the store.
- latency: what the action adds to the webhook's own time, p50 over `--runs` look-ups: the store action's
  turn inside the answer (finding the parameters in the conversation, the limits, the signed call and its
  checks, the audit row, the reply composed) less the webhook's time measured inside its handler; and the
  whole answer's time (labels and language too) beside a plain knowledge answer's.
- hang: a webhook that never answers, with the default 5 s timeout: the time until the visitor has her answer.

Progress goes to stderr; the last line of stdout is one JSON object with every figure.
"""
import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHRASINGS = {  # {order}: the number; the three shapes share the language's words
    "en": ["Where is my order {order}?", "Has order {order} shipped yet?", "Can you track {order} for me?",
           "I'm still waiting for {order}, where is it?", "What's the status of my order {order}?"],
    "es": ["¿Dónde está mi pedido {order}?", "¿Ya se envió el pedido {order}?", "¿Puedes rastrear mi pedido {order}?",
           "¿Cuál es el estado de mi pedido {order}?"],
    "de": ["Wo ist meine Bestellung {order}?", "Wurde die Bestellung {order} schon verschickt?",
           "Kannst du meine Bestellung {order} verfolgen?", "Wie ist der Status meiner Bestellung {order}?"],
    "fr": ["Où est ma commande {order} ?", "La commande {order} a-t-elle été expédiée ?",
           "Pouvez-vous suivre ma commande {order} ?", "Quel est le statut de ma commande {order} ?"],
}
ASKING = {  # a first message without the number
    "en": ["Where is my order?", "Has my package shipped yet?", "I want to track my order", "Where's my parcel?"],
    "es": ["¿Dónde está mi pedido?", "Quiero rastrear mi pedido", "¿Cuándo llega mi paquete?"],
    "de": ["Wo ist meine Bestellung?", "Ich möchte meine Sendung verfolgen", "Wann kommt mein Paket an?"],
    "fr": ["Où est ma commande ?", "Je voudrais suivre ma commande", "Quand mon colis arrivera-t-il ?"],
}
GIVING = {  # a later message with both
    "en": "It's {order}, and my e-mail is {email}", "es": "Es el {order}, mi correo es {email}",
    "de": "Es ist {order}, meine E-Mail ist {email}", "fr": "C'est {order}, mon e-mail est {email}",
}


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 1)


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve_project() -> str:
    """The project's WSGI app (the demo order system among its pages) on a local port; its address."""
    from django.core.wsgi import get_wsgi_application

    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=_Threading, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def stub_webhook(order: dict, handler_ms: list, delay: float = 0.0) -> tuple[str, ThreadingHTTPServer]:
    """A webhook that answers `order` (after `delay` s), timing its own handling into `handler_ms`."""
    body = json.dumps({"status": "ok", "data": order}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            started = time.perf_counter()
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if delay:
                time.sleep(delay)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                return
            handler_ms.append((time.perf_counter() - started) * 1000)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook", server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "bench-actions.db"))
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{args.db}")
    os.environ["ACTIONS_ALLOW_PRIVATE_HOSTS"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("REDIS_URL", None)  # one process: limits counted in memory, nothing sent to workers

    from bench.django_env import django_setup

    django_setup()
    from django.core.management import call_command

    from chatbot.actions import limits, services as actions
    from chatbot.actions.credentials import credentials_open
    from chatbot.actions.demo_orders import DEMO_ACTIONS, DEMO_ORDER_PATTERN
    from chatbot.actions.texts import TEXTS
    from chatbot.conversations import services
    from chatbot.demo import demo_seed, load_json
    from chatbot.models import ActionCall, Conversation, Message, ModelVersion, StoreConnection, Visitor
    from inference.answer import answer_message

    from chatbot import events
    from inference import dispatch

    # The bench answers each message itself, as a worker would: nothing is sent to workers.
    events.unsubscribe(events.MESSAGE_CREATED, dispatch.on_message_created)
    events.unsubscribe(events.CONVERSATION_CHANGED, dispatch.on_conversation_changed)
    call_command("migrate", verbosity=0)
    tenant = demo_seed(["http://127.0.0.1"], "bench-password").tenant
    if not ModelVersion.objects.filter(kind="intent", tenant=tenant, status="active").exists():
        log("training the demo store's intent model (about a minute)")
        started = time.time()
        call_command("train_nlu", "demo", verbosity=0)
        log(f"trained in {time.time() - started:.0f} s")
    base = serve_project()
    secret = credentials_open(StoreConnection.objects.get(tenant=tenant).credentials)["secret"]
    actions.store_connect(tenant, "webhook", base + "/demo/orders/", {"secret": secret},
                          intent_actions=DEMO_ACTIONS, order_pattern=DEMO_ORDER_PATTERN)
    orders = load_json("orders.json")
    rng = random.Random(args.seed)
    counter = {"n": 0}

    def chat():
        visitor = Visitor.objects.create(tenant=tenant)
        return Conversation.objects.create(tenant=tenant, visitor=visitor)

    def say(conversation, text: str, ip: str = "198.51.100.7") -> Message | None:
        counter["n"] += 1
        message, _ = services.message_receive(conversation.id, text, f"b{counter['n']}", ip=ip)
        answer_message(conversation.id, message.id)
        return Message.objects.filter(reply_to=message).exclude(sender="visitor").order_by("seq").first()

    # --- phrasings ------------------------------------------------------------------------------------
    log("phrasings: 50 conversations")
    limits.reset_memory()
    cases = []
    languages = list(PHRASINGS)
    for i in range(50):
        language = languages[i % 4]
        shape = ("first", "later", "asked")[i % 3]
        cases.append((language, shape, orders[i % len(orders)]))
    results, failures = [], []
    for language, shape, order in cases:
        conversation = chat()
        number, email = order["number"], order["email"]
        if shape == "first":
            say(conversation, rng.choice(PHRASINGS[language]).format(order=number), ip=f"192.0.2.{len(results)}")
            reply = say(conversation, email, ip=f"192.0.2.{len(results)}")
        elif shape == "later":
            say(conversation, rng.choice(ASKING[language]), ip=f"192.0.2.{len(results)}")
            reply = say(conversation, GIVING[language].format(order=number, email=email), ip=f"192.0.2.{len(results)}")
        else:
            say(conversation, rng.choice(ASKING[language]), ip=f"192.0.2.{len(results)}")
            say(conversation, number, ip=f"192.0.2.{len(results)}")
            reply = say(conversation, email, ip=f"192.0.2.{len(results)}")
        why = (reply.grounding or [{}])[0] if reply else {}
        result = why.get("result", {})
        state_words = TEXTS[language]["states"][order["state"]]
        right = (result.get("order_number") == number and result.get("state") == order["state"]
                 and state_words in reply.text)
        results.append(right)
        if not right:
            transcript = list(Message.objects.filter(conversation=conversation).values_list("sender", "text"))
            failures.append({"language": language, "shape": shape, "order": number, "transcript": transcript})
    by = {}
    for (language, shape, _), right in zip(cases, results):
        by.setdefault(language, []).append(right)
        by.setdefault(shape, []).append(right)
    phrasings = {"conversations": len(results), "right_order_state": round(sum(results) / len(results), 3),
                 "by": {k: f"{sum(v)}/{len(v)}" for k, v in by.items()}, "failures": failures[:5]}
    log(json.dumps(phrasings)[:400])

    # --- enumeration ------------------------------------------------------------------------------------
    log("enumeration: 200 guesses from one address")
    limits.reset_memory()
    real = [o["number"] for o in orders]
    guesses = real + [f"NW-{rng.randrange(100000, 999999)}" for _ in range(200 - len(real))]
    rng.shuffle(guesses)
    calls_before = ActionCall.objects.count()
    disclosed, conversation, chats = 0, chat(), 1
    secrets_of_orders = [o["email"] for o in orders] + [o.get("tracking_number", "~") for o in orders]
    for guess in guesses:
        conversation.refresh_from_db()
        if conversation.status != "bot":
            conversation, chats = chat(), chats + 1
        reply = say(conversation, f"Where is my order {guess}? my e-mail is {rng.choice(['a', 'b'])}{guess[-3:]}@mail.example",
                    ip="203.0.113.66")
        if reply and (any(g.get("result") for g in reply.grounding or [] if isinstance(g, dict))
                      or any(s in reply.text for s in secrets_of_orders)):
            disclosed += 1
    calls = ActionCall.objects.count() - calls_before
    enumeration = {"guesses": len(guesses), "disclosed": disclosed, "chats": chats,
                   "calls_recorded": calls,
                   "calls_reaching_the_store": ActionCall.objects.filter(
                       params__email__endswith="mail.example").exclude(outcome="limited").count(),
                   "limits": {"per_visitor": os.environ.get("ACTIONS_MISSES_PER_VISITOR", "[5, 3600]"),
                              "per_ip": os.environ.get("ACTIONS_MISSES_PER_IP", "[20, 3600]")}}
    log(json.dumps(enumeration))

    # --- latency --------------------------------------------------------------------------------------
    log("latency")
    limits.reset_memory()
    order = {"order_number": "NW-482913", "state": "in_transit", "carrier": "DHL", "tracking_number": "JD01",
             "tracking_url": "https://www.dhl.com/track?id=JD01", "estimated_delivery": "2026-12-09"}
    handler_ms: list[float] = []
    url, stub = stub_webhook(order, handler_ms)
    actions.store_connect(tenant, "webhook", url, {"secret": secret}, intent_actions=DEMO_ACTIONS,
                          order_pattern=DEMO_ORDER_PATTERN)
    from chatbot.actions import dialogue

    step_ms: list[float] = []
    untimed = dialogue.action_step

    def timed_step(*a, **k):  # the store action's own turn, inside the answer
        started = time.perf_counter()
        try:
            return untimed(*a, **k)
        finally:
            step_ms.append((time.perf_counter() - started) * 1000)

    dialogue.action_step = timed_step
    totals, added, plain, steps = [], [], [], []
    for i in range(args.runs + 1):
        conversation = chat()
        counter["n"] += 1
        message, _ = services.message_receive(conversation.id, "Where is my order NW-482913? anna.keller@example.com",
                                              f"l{counter['n']}", ip=f"198.18.0.{i % 250}")
        before = len(handler_ms)
        started = time.perf_counter()
        answer_message(conversation.id, message.id)
        total = (time.perf_counter() - started) * 1000
        if i == 0 or len(handler_ms) != before + 1:
            continue  # the first warms up
        totals.append(total)
        added.append(step_ms[-1] - handler_ms[-1])
        steps.append(step_ms[-1])
        conversation = chat()
        counter["n"] += 1
        message, _ = services.message_receive(conversation.id, "How long does shipping take?", f"k{counter['n']}")
        started = time.perf_counter()
        answer_message(conversation.id, message.id)
        plain.append((time.perf_counter() - started) * 1000)
    stub.shutdown()
    dialogue.action_step = untimed
    latency = {"runs": len(totals), "answer_with_action_p50_ms": p50(totals),
               "knowledge_answer_p50_ms": p50(plain), "action_turn_p50_ms": p50(steps),
               "webhook_own_p50_ms": p50(handler_ms[1:]), "added_by_the_action_p50_ms": p50(added)}
    log(json.dumps(latency))

    # --- hang -----------------------------------------------------------------------------------------
    log("hang: a webhook that does not answer, default timeout")
    url, stub = stub_webhook(order, [], delay=60)
    actions.store_connect(tenant, "webhook", url, {"secret": secret}, intent_actions=DEMO_ACTIONS,
                          order_pattern=DEMO_ORDER_PATTERN, timeout=None)
    conversation = chat()
    message, _ = services.message_receive(conversation.id, "Where is my order NW-482913? anna.keller@example.com", "h1")
    started = time.perf_counter()
    answer_message(conversation.id, message.id)
    waited = time.perf_counter() - started
    reply = Message.objects.filter(reply_to=message, sender="bot").first()
    conversation.refresh_from_db()
    hang = {"timeout_s": StoreConnection.objects.get(tenant=tenant).timeout, "answered_after_s": round(waited, 2),
            "reply": reply.text if reply else None, "handoff": conversation.handoff_code}
    stub.server_close()
    log(json.dumps(hang))
    # leave the demo connected to its own order system again
    actions.store_connect(tenant, "webhook", base + "/demo/orders/", {"secret": secret}, intent_actions=DEMO_ACTIONS,
                          order_pattern=DEMO_ORDER_PATTERN)
    print(json.dumps({"phrasings": phrasings, "enumeration": enumeration, "latency": latency, "hang": hang}))


if __name__ == "__main__":
    main()
