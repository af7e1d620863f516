#!/usr/bin/env python3
"""The outside world of the browser tests: an SMS gateway (HTTP) and an SMTP server
(aiosmtpd, which we did not write), both on loopback, keeping what they receive.

usage: sinks.py HTTP_PORT SMTP_PORT

  POST /sms       the gateway: stores the JSON body, answers 200
  GET  /messages  {"sms": [bodies...], "mail": [{"from", "to", "subject", "body"}...]}
"""
import asyncio
import email
import email.policy
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

received = {"sms": [], "mail": []}
lock = threading.Lock()


class Gateway(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            message = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        with lock:
            received["sms"].append(message)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"queued"}')

    def do_GET(self):
        with lock:
            data = json.dumps(received).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Mailbox:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        with lock:
            received["mail"].append({
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "subject": str(msg["subject"]),
                "body": body.get_content() if body else "",
            })
        return "250 OK"


def main():
    http_port, smtp_port = int(sys.argv[1]), int(sys.argv[2])
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    server = ThreadingHTTPServer(("127.0.0.1", http_port), Gateway)
    print(f"sinks: SMS gateway on {http_port}, SMTP on {smtp_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
