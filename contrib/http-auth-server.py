#!/usr/bin/env python3
"""Example server for postern's http passdb/userdb (driver = "http"), on
PostfixAdmin-style data, using only Python's standard library. It documents
the contract by implementing it; see postern.conf(5), HTTP DRIVER.

Data: a SQLite database with PostfixAdmin's `mailbox` table (PostfixAdmin
can run on SQLite; export the table from MySQL/PostgreSQL otherwise):
    mailbox(username, password, maildir, quota, active, domain, ...)
`password` holds PostfixAdmin's hash, e.g. "{SHA512-CRYPT}$6$...", or a bare
"$1$..."/"$6$..." crypt string.

Run it behind a unix socket or on loopback, with a token:
    http-auth-server.py --db /var/lib/postfixadmin/postfixadmin.db \
        --unix /run/postern-panel/api.sock --token-file /etc/postern/panel.token
and in postern.conf:
    [[passdb]]
    driver = "http"
    url = "http://localhost/auth"
    unix_socket = "/run/postern-panel/api.sock"
    bearer_token_file = "/etc/postern/panel.token"
    mode = "lookup"        # this server hands out the stored hash; postern checks it
    [[userdb]]
    driver = "http"
    url = "http://localhost/auth"
    unix_socket = "/run/postern-panel/api.sock"
    bearer_token_file = "/etc/postern/panel.token"

THE CONTRACT. postern POSTs one JSON object:
    {"request": "verify" | "lookup" | "userdb",
     "user": "alice@example.com", "original_user": "Alice@example.com",
     "service": "smtp", "mechanism": "PLAIN",
     "local_ip": "192.0.2.1", "remote_ip": "198.51.100.7",
     "local_port": "587", "remote_port": "51234", "secured": true,
     "password": "..."}          <- "verify" requests only
and reads one JSON object back, from a 2xx response or a 4xx response's body:
    {"result": "ok" | "fail" | "unknown" | "tempfail",
     "user": "canonical@name",    <- optional rename
     "password": "{SCHEME}hash",  <- "lookup" answers
     "nologin": true, "reason": "text",
     "fields": {"userdb_quota_rule": "*:storage=1G", ...}}   <- passdb extra fields
     (userdb answers: "fields": {"home": ..., "uid": 5000, "gid": 5000, "mail": ...})
A 5xx, a redirect, a timeout or a body that is not such an object makes
postern answer "temporary failure", never "wrong password".
"""

import argparse
import hmac
import http.server
import json
import os
import socketserver
import sqlite3
import sys
import threading

try:  # deprecated in Python 3.11, gone in 3.13: verify mode only
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
except ImportError:
    crypt = None

MAX_REQUEST = 64 * 1024
VMAIL_UID = 5000
VMAIL_GID = 5000
MAIL_ROOT = "/var/vmail"


class Panel:
    def __init__(self, db, token):
        self.db = db
        self.token = token
        self.local = threading.local()

    def conn(self):
        if not hasattr(self.local, "db"):
            self.local.db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        return self.local.db

    def mailbox(self, user):
        row = self.conn().execute(
            "SELECT username, password, maildir, quota, active FROM mailbox WHERE lower(username) = lower(?)",
            (user,)).fetchone()
        return row

    def answer(self, req):
        """(HTTP status, answer object) for one request."""
        kind, user = req.get("request"), req.get("user")
        if not isinstance(user, str) or kind not in ("verify", "lookup", "userdb"):
            return 400, {"result": "fail", "reason": "bad request"}
        try:
            row = self.mailbox(user)
        except sqlite3.Error:
            return 503, {"result": "tempfail"}
        if row is None:
            return 404, {"result": "unknown"}
        username, stored, maildir, quota, active = row
        if kind == "userdb":
            fields = {"home": f"{MAIL_ROOT}/{maildir}", "mail": f"maildir:{MAIL_ROOT}/{maildir}",
                      "uid": VMAIL_UID, "gid": VMAIL_GID}
            if quota:
                fields["quota_rule"] = f"*:bytes={quota}"
            return 200, {"result": "ok", "user": username, "fields": fields}
        answer = {"result": "ok", "user": username}
        if not active:
            answer.update(nologin=True, reason="account disabled")
        if quota:
            answer["fields"] = {"userdb_quota_rule": f"*:bytes={quota}"}
        if kind == "lookup":
            answer["password"] = stored if stored.startswith("{") else "{CRYPT}" + stored
            return 200, answer
        password = req.get("password", "")
        if stored.startswith("{PLAIN}"):
            ok = hmac.compare_digest(stored[7:].encode(), password.encode())
        elif crypt is not None:
            h = stored.split("}", 1)[1] if stored.startswith("{") else stored
            ok = hmac.compare_digest(crypt.crypt(password, h).encode(), h.encode())
        else:
            return 503, {"result": "tempfail"}  # cannot check here: use mode = "lookup"
        return (200, answer) if ok else (401, {"result": "fail"})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def address_string(self):
        return "postern"

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        panel = self.server.panel
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self.reply(411, {"result": "fail"})
        if length > MAX_REQUEST:
            return self.reply(413, {"result": "fail"})
        body = self.rfile.read(length)
        if panel.token and not hmac.compare_digest(
                self.headers.get("Authorization", "").encode(), ("Bearer " + panel.token).encode()):
            return self.reply(401, {"error": "unauthorized"})  # no "result": postern temp-fails
        try:
            req = json.loads(body)
        except ValueError:
            return self.reply(400, {"result": "fail"})
        status, obj = panel.answer(req)
        self.reply(status, obj)

    do_PUT = do_POST


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        sock, _ = super().get_request()
        return sock, ("postern", 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="SQLite database with PostfixAdmin's mailbox table")
    ap.add_argument("--unix", help="listen on this unix socket")
    ap.add_argument("--listen", default="127.0.0.1:8088", help="or on this address:port")
    ap.add_argument("--token-file", help="require 'Authorization: Bearer <token>'")
    args = ap.parse_args()
    token = open(args.token_file).read().strip() if args.token_file else None
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        server = UnixServer(args.unix, Handler)
        os.chmod(args.unix, 0o660)
    else:
        host, port = args.listen.rsplit(":", 1)
        server = TCPServer((host, int(port)), Handler)
    server.panel = Panel(args.db, token)
    print(f"http-auth-server: serving {args.db}", file=sys.stderr)
    server.serve_forever()


if __name__ == "__main__":
    main()
