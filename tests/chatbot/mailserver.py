"""A real SMTP server on loopback (aiosmtpd) for the e-mail tests and bench: it keeps what it accepts, can be
stopped and started again on the same port (an SMTP server down, then back), and can refuse recipients or
defer mails with the answers real servers give."""
import logging
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller

from tests.processes import free_port

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO


class SmtpServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.received: list[bytes] = []
        self.refused: set[str] = set()  # recipients answered 550
        self.deferring = False  # every mail answered 451
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # aiosmtpd's handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.deferring:
            return "451 4.3.0 Try again later"
        with self._lock:
            self.received.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"

    # the test's side
    def start(self) -> "SmtpServer":
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def mails(self) -> list[EmailMessage]:
        with self._lock:
            raw = list(self.received)
        return [BytesParser(policy=policy.default).parsebytes(data) for data in raw]

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails()
            if len(mails) >= count:
                return mails
            time.sleep(0.05)
        raise AssertionError(f"the SMTP server got {len(self.mails())} mails, not {count}, within {timeout} s")


def body(mail: EmailMessage) -> str:
    """A received mail's text, with the line ends it was written with (SMTP carries CRLF)."""
    return mail.get_content().replace("\r\n", "\n")


def mail_settings(settings, server: SmtpServer) -> None:
    """Point Django's e-mail backend at `server`, with an inbound domain for the reply addresses."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 3
    settings.DEFAULT_FROM_EMAIL = "Chat <chat@shop.example>"
    settings.INBOUND_EMAIL_DOMAIN = "in.shop.example"
    settings.PUBLIC_URL = "https://chat.example.com"
