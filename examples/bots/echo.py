#!/usr/bin/env python3
"""A zimfleet bot in Python (standard library only): receives the `webhook` behaviour's
events and answers every room or peer text message with the same text behind "echo: ".

    python3 examples/bots/echo.py --port 8787 &
    zimfleet run --bots examples/bots

The event schema and the actions are in docs/bots.md ("The webhook's JSON"). With
--bearer-env VAR, a request must carry `Authorization: Bearer <value of VAR>` (401 if not).
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "echo: "
TEXT = 1  # message type Text
ROOM = 1  # conv_type Room (0 = Peer)


def answer(event):
    """The actions for one event: a list, possibly empty."""
    if event.get("kind") != "message":
        return []
    message = event["message"]
    body = message.get("body", "")
    if message.get("type") != TEXT or message.get("from") == event.get("account"):
        return []
    if body.startswith(PREFIX):
        return []  # never echo an echo: two echo bots would bounce forever
    if message.get("conv_type") == ROOM:
        return [{"type": "room_message", "room_id": message["conv_id"], "text": PREFIX + body}]
    return [{"type": "peer_message", "user_id": message["from"], "text": PREFIX + body}]


def handler(bearer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: zimfleet reuses its connections

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if bearer is not None and self.headers.get("Authorization") != "Bearer " + bearer:
                return self.reply(401, {"error": "bad bearer token"})
            try:
                event = json.loads(raw)
            except ValueError:
                return self.reply(400, {"error": "not JSON"})
            self.reply(200, {"actions": answer(event)})

        def reply(self, status, value):
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass  # one line per event would drown the output

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--bearer-env", help="environment variable holding the bearer token")
    args = parser.parse_args()
    bearer = None
    if args.bearer_env:
        bearer = os.environ.get(args.bearer_env)
        if not bearer:
            sys.exit(f"echo.py: environment variable {args.bearer_env} is not set")
    server = ThreadingHTTPServer((args.host, args.port), handler(bearer))
    host, port = server.server_address[:2]
    print(f"echo.py listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
