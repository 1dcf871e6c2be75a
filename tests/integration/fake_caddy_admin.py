#!/usr/bin/env python3
"""STAND-IN for Caddy's admin API, used only to provoke a rejected /load: it listens on a unix
socket and answers every request with HTTP 400 and a Caddy-style {"error": ...} body.
Usage: fake_caddy_admin.py SOCKET_PATH"""
import json
import os
import socketserver
import sys
import http.server


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"error": "loading config: simulated rejection by the test"}).encode()
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    pass


path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
Server(path, Handler).serve_forever()
