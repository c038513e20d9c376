#!/usr/bin/env python3
"""A real SMTP server for incidentd's e-mail tests.

Usage: smtp_sink.py --out DIR [--host 127.0.0.1] [--port 0]

Listens (port 0 = a free port), prints one line `PORT <n>` on stdout once it accepts
connections, and then stores every message it accepts as DIR/<n>.json, written before the
final 250 reply to DATA (so a client that got its 250 can read the file at once). Each file
holds what a mail client sees after parsing the message with Python's `email` package:

    peer (client host:port), mail_from, rcpt_tos, subject (RFC 2047 decoded), from, to, message_id, date,
    delivery (X-Incidentd-Delivery), content_type, parts (content types of the leaf parts),
    text, html (decoded bodies of the text/plain and text/html parts, or null), raw

Recipients are answered by their local part:
    tempfail*  -> 451 4.3.0 (try again later)
    reject*    -> 550 5.1.1 (no such user)

Uses aiosmtpd when it can be imported, else the standard library's smtpd/asyncore (present up to
Python 3.11). Exits when stdin closes, so a test that dies does not leave it behind.
"""

import argparse
import email
import email.policy
import json
import os
import sys
import threading

TEMPFAIL = "451 4.3.0 Mailbox temporarily unavailable, try again later (test sink)"
REJECT = "550 5.1.1 <{addr}>: Recipient address rejected: no such user (test sink)"


def rcpt_verdict(addr):
    """The error reply for this recipient, or None to accept it."""
    local = addr.rsplit("@", 1)[0].lower()
    if local.startswith("tempfail"):
        return TEMPFAIL
    if local.startswith("reject"):
        return REJECT.format(addr=addr)
    return None


class Store:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.count = 0

    def save(self, peer, mail_from, rcpt_tos, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(data, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "peer": "%s:%s" % tuple(peer[:2]),
            "mail_from": mail_from,
            "rcpt_tos": list(rcpt_tos),
            "subject": str(msg["subject"]) if msg["subject"] is not None else None,
            "from": str(msg["from"]) if msg["from"] is not None else None,
            "to": str(msg["to"]) if msg["to"] is not None else None,
            "message_id": str(msg["message-id"]) if msg["message-id"] is not None else None,
            "date": str(msg["date"]) if msg["date"] is not None else None,
            "delivery": msg["x-incidentd-delivery"],
            "content_type": msg.get_content_type(),
            "parts": [p.get_content_type() for p in msg.walk() if not p.is_multipart()],
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": data.decode("utf-8", "replace"),
        }
        with self.lock:
            self.count += 1
            n = self.count
        path = os.path.join(self.out, "%06d.json" % n)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.replace(tmp, path)


def announce(port):
    print("PORT %d" % port, flush=True)


def watch_stdin():
    """Exit the whole process when the parent closes our stdin (or dies)."""
    def run():
        try:
            sys.stdin.read()
        finally:
            os._exit(0)

    threading.Thread(target=run, daemon=True).start()


def serve_aiosmtpd(host, port, store):
    import asyncio

    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            verdict = rcpt_verdict(address)
            if verdict:
                return verdict
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            store.save(session.peer, envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
            return "250 2.0.0 Ok: queued as test-%d" % store.count

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), enable_SMTPUTF8=True, decode_data=False),
            host=host,
            port=port,
        )
        announce(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def serve_stdlib(host, port, store):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import asyncore
            import smtpd
        except ImportError:
            sys.exit(
                "smtp_sink: Python %d.%d has no smtpd module; install aiosmtpd "
                "(Debian: apt-get install python3-aiosmtpd, or pip install aiosmtpd)"
                % sys.version_info[:2]
            )

    class Channel(smtpd.SMTPChannel):
        def smtp_RCPT(self, arg):
            if arg and self.seen_greeting and self.mailfrom:
                address, _ = self._getaddr(self._strip_command_keyword("TO:", arg))
                verdict = rcpt_verdict(address or "")
                if verdict:
                    self.push(verdict)
                    return
            super().smtp_RCPT(arg)

    class Server(smtpd.SMTPServer):
        channel_class = Channel

        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
            store.save(peer, mailfrom, rcpttos, data)
            return "250 2.0.0 Ok: queued as test-%d" % store.count

    server = Server((host, port), None, decode_data=False, enable_SMTPUTF8=True)
    announce(server.socket.getsockname()[1])
    asyncore.loop(timeout=0.5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--impl", choices=["auto", "aiosmtpd", "stdlib"], default="auto")
    args = p.parse_args()
    store = Store(args.out)
    impl = args.impl
    if impl == "auto":
        try:
            import aiosmtpd.smtp  # noqa: F401

            impl = "aiosmtpd"
        except ImportError:
            impl = "stdlib"
    print("smtp_sink: using %s" % impl, file=sys.stderr, flush=True)
    watch_stdin()
    if impl == "aiosmtpd":
        serve_aiosmtpd(args.host, args.port, store)
    else:
        serve_stdlib(args.host, args.port, store)


if __name__ == "__main__":
    main()
