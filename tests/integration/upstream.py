#!/usr/bin/env python3
"""A tiny HTTP upstream for the integration tests: GET / says hello, GET /health says ok.
Usage: upstream.py PORT [NAME]. Listens on 127.0.0.1 only."""
import http.server
import sys

NAME = sys.argv[2] if len(sys.argv) > 2 else "upstream"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (b"ok\n" if self.path.startswith("/health")
                else ("hello from %s\n" % NAME).encode())
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
