# A stand-in for a mail panel's HTTP API (mailcow, Mailu, a PostfixAdmin-style
# panel): none of those runs on this machine, so this Python standard-library
# server implements postern's http driver contract (postern.conf(5), HTTP
# DRIVER) over plain HTTP, HTTPS or a unix socket, plus the misbehaviours a
# real panel shows on a bad day; and for an identity provider (Keycloak and
# the like, also absent here), RFC 7662 token introspection at .../introspect,
# OpenID Connect userinfo at .../userinfo, a discovery document at
# .../.well-known/openid-configuration and a JWK Set at .../certs (with
# RsaKey below to sign tokens and rotate keys). It runs in a thread of the
# test process and counts what it was asked.

import hmac
import http.server
import json
import os
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
import base64

# What the server does instead of answering properly (PanelServer.behaviour).
MISBEHAVIOURS = ("slow", "500", "truncated", "nonjson", "huge", "redirect", "empty", "close")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: postern reuses connections

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        if self.server.panel.nodelay and self.connection.family != socket.AF_UNIX:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.panel.lock:
            self.server.panel.active.add(self.connection)

    def finish(self):
        with self.server.panel.lock:
            self.server.panel.active.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def address_string(self):  # unix sockets have no (host, port)
        return "panel-client"

    def _send(self, status, body, content_type="application/json", headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, status, obj):
        self._send(status, json.dumps(obj))

    def do_POST(self):
        srv = self.server.panel
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        with srv.lock:
            srv.connections.add(id(self.connection))
        if self.path.endswith("/introspect"):
            self._introspect(srv, raw)
            return
        try:
            req = json.loads(raw)
        except ValueError:
            self._answer(400, {"error": "bad request"})
            return
        with srv.lock:
            srv.requests.append(req)
            srv.headers.append(dict(self.headers))
        if srv.token and self.headers.get("Authorization") != "Bearer " + srv.token:
            self._answer(401, {"error": "no or wrong token"})  # no "result": postern's temp-fail
            return
        b = srv.behaviour
        if b == "slow":
            time.sleep(srv.slow_seconds)
        elif b == "500":
            self._answer(500, {"result": "ok"})
            return
        elif b == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "200")
            self.end_headers()
            self.wfile.write(b'{"result":"ok","fie')
            self.wfile.flush()
            self.close_connection = True
            return
        elif b == "nonjson":
            self._send(200, "<html><body>ok</body></html>", "text/html")
            return
        elif b == "huge":
            self._send(200, '{"result":"ok","pad":"' + "x" * (2 * 1024 * 1024) + '"}')
            return
        elif b == "redirect":
            self._send(302, "", headers=[("Location", "/elsewhere")])
            return
        elif b == "empty":
            self._send(200, "")
            return
        elif b == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, obj = srv.contract(req)
        self._answer(status, obj)

    do_PUT = do_POST

    def do_GET(self):
        """The identity provider's GET endpoints: userinfo (bearer token),
        discovery document, JWK Set (with Cache-Control max-age when set)."""
        srv = self.server.panel
        with srv.lock:
            srv.connections.add(id(self.connection))
            srv.gets.append(self.path)
        if srv.behaviour == "500":
            self._answer(500, {"error": "server_error"})
            return
        if self.path.endswith("/userinfo"):
            auth = self.headers.get("Authorization", "")
            info = srv.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if info is None or info.get("revoked") or info["exp"] <= time.time():
                self._send(401, "", headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
                return
            self._answer(200, {"sub": "f3b0c2", "email": info["user"], "preferred_username": info["user"]})
        elif self.path.endswith("/.well-known/openid-configuration"):
            base = self.server.panel.url.rsplit("/api/auth", 1)[0] + "/realms/mail"
            self._answer(200, {"issuer": base, "jwks_uri": base + "/certs",
                               "introspection_endpoint": base + "/introspect",
                               "userinfo_endpoint": base + "/userinfo"})
        elif self.path.endswith("/certs"):
            headers = [] if srv.jwks_max_age is None else [("Cache-Control", f"public, max-age={srv.jwks_max_age}")]
            self._send(200, json.dumps({"keys": [k.jwk() for k in srv.jwks]}), headers=headers)
        else:
            self._answer(404, {"error": "not found"})

    def _introspect(self, srv, raw):
        """RFC 7662 token introspection, as an identity provider answers it:
        client credentials by HTTP Basic, the token form-encoded."""
        form = urllib.parse.parse_qs(raw.decode("ascii", "replace"))
        with srv.lock:
            srv.requests.append({"introspect": form.get("token", [""])[0]})
            srv.headers.append(dict(self.headers))
        if srv.behaviour == "500":
            self._answer(500, {"error": "server_error"})
            return
        expected = "Basic " + base64.b64encode(f"{srv.client_id}:{srv.client_secret}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._answer(401, {"error": "invalid_client"})
            return
        info = srv.tokens.get(form.get("token", [""])[0])
        if info is None or info.get("revoked"):
            self._answer(200, {"active": False})
            return
        self._answer(200, {"active": True, "username": info["user"], "exp": info["exp"],
                           "client_id": "mail", "token_type": "Bearer"})


class _TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128

    def get_request(self):
        sock, _ = super().get_request()
        return sock, ("panel-client", 0)


class PanelServer:
    """users: name -> {"password": cleartext, "stored": "{SCHEME}...",
    "fields": {...}, "userdb": {...}, "nologin": bool, "reason": str,
    "rename": str}. tls=(cert, key) for HTTPS; unix_path for a unix socket.
    nodelay: TCP_NODELAY on each connection (the benchmark): headers and body
    go out in two writes, and with Nagle's algorithm the body waits for the
    client's delayed ACK, 40 ms an answer."""

    def __init__(self, users, *, tls=None, unix_path=None, token=None, slow_seconds=3.0, nodelay=False):
        self.users = users
        self.nodelay = nodelay
        self.token = token
        self.slow_seconds = slow_seconds
        self.behaviour = None
        # RFC 7662 introspection at .../introspect: token -> {"user", "exp", "revoked"}.
        self.tokens = {}
        self.client_id, self.client_secret = "postern", "introspection-client-secret"
        # The JWK Set at .../certs: RsaKey objects; its Cache-Control max-age (None: no header).
        self.jwks = []
        self.jwks_max_age = None
        self.gets = []  # paths of the GET requests, in order
        self.requests = []
        self.headers = []
        self.connections = set()
        self.active = set()
        self.stopped = False
        self.lock = threading.Lock()
        if unix_path:
            self.server = _UnixServer(unix_path, _Handler)
            self.url = "http://panel.invalid/api/auth"
        else:
            self.server = _TCPServer(("127.0.0.1", 0), _Handler)
            scheme = "http"
            if tls:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*tls)
                self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
                scheme = "https"
            self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/api/auth"
        self.unix_path = unix_path
        self.server.panel = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        """Stops listening and drops every open connection: the server is gone."""
        if self.stopped:
            return
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            active = list(self.active)
        for conn in active:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=10)

    def contract(self, req):
        """(status, answer) for one request, as a panel would give it."""
        kind = req.get("request")
        name = req.get("user")
        u = self.users.get(name)
        if u is None and isinstance(name, str):  # panels match addresses without case
            u = next((v for k, v in self.users.items() if k.lower() == name.lower()), None)
        if u is None:
            return 404, {"result": "unknown"}
        if kind == "verify":
            if not hmac.compare_digest(str(req.get("password", "")).encode(), u["password"].encode()):
                return 401, {"result": "fail"}
            ans = {"result": "ok", "fields": dict(u.get("fields", {}))}
        elif kind == "lookup":
            ans = {"result": "ok", "password": u.get("stored"), "fields": dict(u.get("fields", {}))}
        elif kind == "userdb":
            return 200, {"result": "ok", "fields": dict(u.get("userdb", {}))}
        else:
            return 400, {"result": "fail", "reason": "unknown request"}
        if u.get("nologin"):
            ans["nologin"] = True
            ans["reason"] = u.get("reason", "")
        if u.get("rename"):
            ans["user"] = u["rename"]
        return 200, ans


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class RsaKey:
    """An RSA signing key of the stand-in identity provider (openssl CLI):
    its public JWK and RS256 JSON Web Tokens signed with it."""

    def __init__(self, directory, kid):
        self.kid = kid
        self.path = os.path.join(directory, f"jwk-{kid}.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.path,
                cwd=directory)
        out = subprocess.run(["openssl", "rsa", "-in", self.path, "-modulus", "-noout"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
        self.n = bytes.fromhex(out.strip().split("=", 1)[1])

    def jwk(self):
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": _b64url(self.n),
                "e": _b64url((65537).to_bytes(3, "big"))}

    def token(self, claims, kid=None):
        head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}).encode())
        body = _b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.path], input=f"{head}.{body}".encode(),
                             capture_output=True, check=True, timeout=60).stdout
        return f"{head}.{body}.{_b64url(sig)}"


def openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{p.stderr}")


def make_ca(directory, name):
    """A test CA (NAME-ca.pem) and a server certificate it signed for
    127.0.0.1 and localhost; returns (ca, cert, key) paths."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "2",
            "-subj", f"/CN=postern http test CA {name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    openssl("req", *ec, "-keyout", f"{name}-server.key", "-out", f"{name}-server.csr", "-subj", "/CN=localhost",
            cwd=directory)
    with open(os.path.join(directory, f"{name}-ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f"{name}-server.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
            "-CAcreateserial", "-out", f"{name}-server.pem", "-days", "2", "-extfile", f"{name}-ext.cnf",
            cwd=directory)
    return tuple(os.path.join(directory, f"{name}-{s}") for s in ("ca.pem", "server.pem", "server.key"))
