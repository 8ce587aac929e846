"""A real SMTP server on 127.0.0.1 for the tests (aiosmtpd), collecting what it receives."""

from __future__ import annotations

import socket

from aiosmtpd.controller import Controller


class _Collector:
    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"


class SmtpSink:
    """Context manager: start an SMTP server on a free 127.0.0.1 port, stop it on exit."""

    def __enter__(self) -> SmtpSink:
        with socket.socket() as probe:  # Controller(port=0) does not pick a free port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    @property
    def messages(self) -> list[tuple[list[str], bytes]]:
        return self._collector.messages

    def __exit__(self, *exc) -> None:
        self._controller.stop()
