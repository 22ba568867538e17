"""E-mail continuity benchmark: agents' replies mailed while the SMTP server is down, and visitors' answers by
e-mail reaching the agents' console.

    .venv/bin/python bench/mail.py [--replies 100] [--down 60] [--inbound 20] [--quick] [--timeout 600]

Starts, on free loopback ports, a daphne, a Celery worker (prefork, one child) and beat, against a database of
its own (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/email_bench: created if missing, migrated)
and Redis db 12 (REDIS_URL; a queue and channel prefix of the run's own), with a real SMTP server on loopback
(aiosmtpd, in this process) as EMAIL_URL. Then:

1. Outage: the SMTP server stops; --replies agent replies are written (agent_message_send, to visitors who left
   an address and have no widget open) over the first part of the outage; the server starts again after
   --down seconds (--quick: 10). It waits until every reply's mail is `sent` (or failed), and counts from what
   the SMTP server received: lost (a reply whose Message-ID never arrived) and sent twice (a Message-ID that
   arrived more than once), plus how long after the server came back the last one arrived. Retries are
   shortened for a run of minutes (EMAIL_RETRY_BACKOFF_MAX 10 s, the sweep every 5 s for mails queued 20 s).
2. Inbound: an agent's console socket is open on daphne; --inbound (--quick: 10) answers by e-mail are POSTed,
   signed, to /inbound/email/, one at a time, and it measures the time from the POST to the `message` frame on
   the agent socket (target: under 2 s).

Progress goes to stderr; the last line of stdout is one JSON object (targets: 0 lost, 0 sent twice).
"""
import sys
from pathlib import Path

# Named mail.py, not email.py: run as `python bench/x.py`, the bench folder comes first on sys.path, where an
# email.py would stand in for the standard library's `email` package in every bench.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402

from bench.django_env import PROCESS_ENV, database_prepare, django_setup  # noqa: E402
from tests.chatbot.mailserver import SmtpServer  # noqa: E402
from tests.processes import Beat, Daphne, Worker, wait_until  # noqa: E402

DOMAIN = "in.bench.example"
SECRET = "bench-inbound-secret"


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replies", type=int, default=100)
    parser.add_argument("--conversations", type=int, default=20, help="visitors the replies are spread over")
    parser.add_argument("--down", type=float, default=60.0, help="seconds the SMTP server is down")
    parser.add_argument("--inbound", type=int, default=20, help="answers by e-mail timed to the agent socket")
    parser.add_argument("--quick", action="store_true", help="the server down 10 s, 10 answers by e-mail")
    parser.add_argument("--timeout", type=float, default=600.0, help="the longest wait for the mails after the outage")
    args = parser.parse_args()
    if args.quick:
        args.down, args.inbound = min(args.down, 10.0), min(args.inbound, 10)
    return args


def environment(tag: str, smtp_port: int) -> dict:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/email_bench")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    env.update(
        PROCESS_ENV,
        CELERY_QUEUE=f"email-{tag}", TRAINING_QUEUE=f"email-training-{tag}", CHANNELS_PREFIX=f"email-{tag}",
        ALLOWED_HOSTS="*", TORCH_THREADS="1", LOG_LEVEL="INFO",
        EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}", EMAIL_TIMEOUT="3", DEFAULT_FROM_EMAIL="Bench <chat@bench.example>",
        INBOUND_EMAIL_DOMAIN=DOMAIN, INBOUND_EMAIL_SECRET=SECRET,
        EMAIL_RETRY_BACKOFF_MAX="10", EMAIL_SWEEP_SECONDS="5", EMAIL_SWEEP_AFTER_SECONDS="20",
    )
    return env


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tag = uuid.uuid4().hex[:8]
        self.smtp = SmtpServer().start()
        self.env = environment(self.tag, self.smtp.port)
        self.logs = Path(tempfile.mkdtemp(prefix="email-bench-"))
        self.web = Daphne(self.env, self.logs)
        self.worker = Worker(self.env, self.logs, pool="prefork", name="mailer")
        self.beat = Beat(self.env, self.logs)

    def setup(self) -> None:
        database_prepare(self.env, log)
        for key in ("DATABASE_URL", "REDIS_URL", "CELERY_QUEUE", "TRAINING_QUEUE", "CHANNELS_PREFIX", "ALLOWED_HOSTS",
                    "ANSWER_IN_PROCESS", "EMAIL_URL", "EMAIL_TIMEOUT", "DEFAULT_FROM_EMAIL", "INBOUND_EMAIL_DOMAIN",
                    "INBOUND_EMAIL_SECRET"):
            os.environ[key] = self.env[key]
        django_setup()
        from chatbot.conversations import services
        from chatbot.models import Conversation, Visitor

        self.tenant = services.tenant_create(f"Mail bench {self.tag}", ["https://shop.bench.example"])
        membership, _ = services.agent_add(self.tenant, f"mail-bench-{self.tag}", name="Ada Bench",
                                           email="ada@bench.example")
        self.agent = membership.user
        self.conversations = [
            Conversation.objects.create(
                tenant=self.tenant, status=Conversation.Status.HUMAN, assigned_agent=self.agent,
                visitor=Visitor.objects.create(tenant=self.tenant, email=f"visitor{n}@bench.example"))
            for n in range(self.args.conversations)]

    def start(self) -> None:
        for process in (self.web, self.worker, self.beat):
            process.launch()
        for process in (self.web, self.worker):
            process.wait_ready(180)

    def stop(self) -> None:
        for process in (self.beat, self.worker, self.web):
            process.stop()
        self.smtp.stop()
        import redis

        client = redis.Redis.from_url(self.env["REDIS_URL"])
        for key in client.scan_iter(f"*{self.tag}*", count=1000):
            client.delete(key)

    # --- 1: replies while the SMTP server is down ------------------------------------------------------

    def outage(self) -> dict:
        from chatbot.conversations import services
        from chatbot.models import Message

        self.smtp.stop()
        down_at = time.monotonic()
        log(f"SMTP server down; writing {self.args.replies} replies")
        spread = min(self.args.down * 0.5, 20.0)
        ids = []
        for n in range(self.args.replies):
            conversation = self.conversations[n % len(self.conversations)]
            message, _ = services.agent_message_send(self.agent, conversation.id, f"Reply {n} from the bench.",
                                                     f"bench-{self.tag}-{n}")
            ids.append(message.id)
            time.sleep(max(0.0, down_at + spread * (n + 1) / self.args.replies - time.monotonic()))
        queued = Message.objects.filter(pk__in=ids, email_state="queued").count()
        time.sleep(max(0.0, down_at + self.args.down - time.monotonic()))
        self.smtp.start()
        up_at = time.monotonic()
        log(f"SMTP server back after {up_at - down_at:.0f} s; {queued} of {len(ids)} replies were queued")

        def settled() -> bool:
            return not Message.objects.filter(pk__in=ids, email_state="queued").exists()

        try:
            wait_until(settled, self.args.timeout, "every mail sent", interval=0.5)
        except AssertionError as exc:
            log(str(exc))
        all_sent_s = time.monotonic() - up_at
        time.sleep(5)  # a duplicate still on its way arrives
        received = Counter(str(mail["Message-ID"]) for mail in self.smtp.mails())
        domain = DOMAIN
        expected = {f"<message.{pk}@{domain}>" for pk in ids}
        states = Counter(Message.objects.filter(pk__in=ids).values_list("email_state", flat=True))
        attempts = Counter(Message.objects.filter(pk__in=ids).values_list("email_attempts", flat=True))
        return {
            "replies": len(ids),
            "queued_while_down": queued,
            "down_s": round(up_at - down_at, 1),
            "states": dict(states),
            "lost": len(expected - set(received)),
            "sent_twice": sum(1 for mail_id, n in received.items() if mail_id in expected and n > 1),
            "received": sum(received.values()),
            "all_sent_after_up_s": round(all_sent_s, 1),
            "attempts": {str(k): v for k, v in sorted(attempts.items())},
        }

    # --- 2: answers by e-mail to the agent socket ------------------------------------------------------

    def inbound(self) -> dict:
        from django.conf import settings
        from django.test import Client

        client = Client()
        client.force_login(self.agent)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        return asyncio.run(self._inbound(cookie))

    async def _inbound(self, cookie: str) -> dict:
        from django.conf import settings
        from websockets.asyncio.client import connect

        from chatbot.mail import tokens

        port = self.web.port
        ws = await connect(f"ws://127.0.0.1:{port}/ws/agent/", origin=f"http://127.0.0.1:{port}",
                           additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
                           max_size=2 ** 24, ping_interval=None)
        first = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert first.get("type") == "inbox", first
        latencies, refused = [], 0
        for n in range(self.args.inbound):
            conversation = self.conversations[n % len(self.conversations)]
            text = f"Answer {n} by e-mail, thanks!"
            raw = (f"From: visitor@bench.example\r\nTo: reply+{tokens.reply_token(conversation.id)}@{DOMAIN}\r\n"
                   f"Subject: Re: Your conversation\r\nMessage-ID: <bench.{self.tag}.{n}@bench.example>\r\n"
                   f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\n"
                   f"On Tue, Mar 3, 2026 at 10:15 AM Bench <chat@bench.example> wrote:\r\n> Reply {n}\r\n").encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/inbound/email/", data=raw, method="POST",
                headers={"Content-Type": "message/rfc822",
                         "X-Chatbot-Signature": "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()})
            started = time.monotonic()
            status = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).status)
            if status != 200:
                refused += 1
                continue
            deadline = started + 10
            while time.monotonic() < deadline:
                frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
                if frame.get("type") == "message" and frame["message"].get("text") == text:
                    latencies.append((time.monotonic() - started) * 1000)
                    break
        await ws.close()
        latencies.sort()
        return {
            "answers": self.args.inbound,
            "seen_live": len(latencies),
            "refused": refused,
            "post_to_agent_socket_ms": {
                "p50": round(statistics.median(latencies), 1) if latencies else None,
                "p95": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1) if latencies else None,
                "max": round(latencies[-1], 1) if latencies else None,
            },
        }


def main() -> None:
    args = parse_args()
    bench = Bench(args)
    try:
        bench.setup()
        log(f"starting daphne, a worker and beat (logs in {bench.logs})")
        bench.start()
        outage = bench.outage()
        log(f"outage: {outage}")
        inbound = bench.inbound()
        log(f"inbound: {inbound}")
    finally:
        bench.stop()
    print(json.dumps({"outage": outage, "inbound": inbound,
                      "settings": {"EMAIL_RETRY_BACKOFF_MAX": 10, "EMAIL_SWEEP_SECONDS": 5,
                                   "EMAIL_SWEEP_AFTER_SECONDS": 20}}))


if __name__ == "__main__":
    main()
