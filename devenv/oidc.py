"""A small, real OpenID Connect provider for tests and the demo.

The authorization-code flow with PKCE (S256 only), RS256 ID tokens signed with a
key made at start (joserfc), discovery, JWKS and userinfo, over plain HTTP on
loopback. Users and clients live in a JSON file that is read again at every
request, so a test changes a user's groups by rewriting the file:

    {"clients": {"console": {"secret": "...", "redirect_uris": ["http://.../oidc/callback/"]}},
     "users": {"alice": {"password": "...", "sub": "u-1", "email": "a@example.org",
                         "groups": ["backup-operators"]}}}

Run it alone with ``python -m devenv.oidc --config FILE [--port N]``; it prints
``issuer <url>`` once it listens. Tests use ``serve(config)`` in a thread.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_SECONDS = 60
TOKEN_SECONDS = 300


class Provider:
    def __init__(self, config: Path, issuer: str = ""):
        self.config = Path(config)
        self.issuer = issuer
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8),
                                                         "use": "sig", "alg": "RS256"})  # fmt: skip
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def read(self) -> dict:
        return json.loads(self.config.read_text())

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "claims_supported": ["sub", "email", "preferred_username", "name", "groups"],
        }

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    # The flow ---------------------------------------------------------------------------

    def check_request(self, params: dict) -> str:
        """'' when the authorization request is acceptable, else why not."""
        client = self.read()["clients"].get(params.get("client_id", ""))
        if client is None:
            return "unknown client"
        if params.get("redirect_uri") not in client["redirect_uris"]:
            return "redirect_uri is not registered for this client"
        if params.get("response_type") != "code" or "openid" not in params.get("scope", "").split():
            return "only the code flow with the openid scope is supported"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with S256 is required"
        return ""

    def login(self, params: dict, username: str, password: str) -> str | None:
        """The code for a good login, else None."""
        user = self.read()["users"].get(username)
        if user is None or not secrets.compare_digest(user["password"], password):
            return None
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {**params, "sub": user["sub"], "username": username,
                                "expires": time.time() + CODE_SECONDS}  # fmt: skip
        return code

    def exchange(self, form: dict, basic: tuple[str, str] | None) -> tuple[int, dict]:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.read()["clients"].get(client_id)
        if client is None or not secrets.compare_digest(client["secret"], secret):
            return 401, {"error": "invalid_client"}
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)  # a code is used once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if (
            grant["expires"] < time.time()
            or grant["client_id"] != client_id
            or grant["redirect_uri"] != form.get("redirect_uri")
            or not secrets.compare_digest(challenge.decode(), grant["code_challenge"])
        ):
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": grant["sub"], "aud": client_id, "iat": now,
                  "exp": now + TOKEN_SECONDS, "auth_time": now}  # fmt: skip
        if grant.get("nonce"):
            claims["nonce"] = grant["nonce"]
        header = {"alg": "RS256", "kid": self.key.kid}
        access = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[access] = (grant["username"], now + TOKEN_SECONDS)
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS,
                     "id_token": jwt.encode(header, claims, self.key)}  # fmt: skip

    def userinfo(self, authorization: str) -> tuple[int, dict]:
        token = authorization.removeprefix("Bearer ").strip()
        with self.lock:
            username, expires = self.tokens.get(token, ("", 0))
        user = self.read()["users"].get(username)
        if user is None or expires < time.time():
            return 401, {"error": "invalid_token"}
        return 200, {"sub": user["sub"], "preferred_username": username,
                     "email": user.get("email", ""), "name": user.get("name", username),
                     "groups": list(user.get("groups", []))}  # fmt: skip


def _handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: tests read their own output
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 64 * 1024)).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def _page(self, params: dict, error: str = "") -> None:
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params.items()
            )
            body = (
                "<!doctype html><title>Local OpenID provider</title><h1>Local OpenID provider</h1>"
                + (f'<p role="alert">{html.escape(error)}</p>' if error else "")
                + '<form method="post" action="/authorize">' + hidden
                + '<label>Username <input name="username" id="username"></label>'
                + '<label>Password <input name="password" id="password" type="password"></label>'
                + '<button type="submit" id="sign-in">Sign in</button></form>'
            ).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                return self._json(200, provider.discovery())
            if parts.path == "/jwks":
                return self._json(200, provider.jwks())
            if parts.path == "/userinfo":
                return self._json(*provider.userinfo(self.headers.get("Authorization", "")))
            if parts.path == "/authorize":
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if error := provider.check_request(params):
                    return self._json(400, {"error": "invalid_request", "error_description": error})
                return self._page(params)
            return self._json(404, {"error": "not_found"})

        def do_POST(self):
            path = urlsplit(self.path).path
            form = self._form()
            if path == "/token":
                basic = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    basic = (user, password)
                return self._json(*provider.exchange(form, basic))
            if path == "/authorize":
                username, password = form.pop("username", ""), form.pop("password", "")
                if error := provider.check_request(form):
                    return self._json(400, {"error": "invalid_request", "error_description": error})
                code = provider.login(form, username, password)
                if code is None:
                    return self._page(form, "Wrong username or password.")
                query = urlencode({"code": code, "state": form.get("state", "")})
                self.send_response(302)
                self.send_header("Location", f"{form['redirect_uri']}?{query}")
                self.end_headers()
                return None
            return self._json(404, {"error": "not_found"})

    return Handler


@contextmanager
def serve(config: Path, host: str = "127.0.0.1", port: int = 0):
    """Run a provider in a thread; yields it (``provider.issuer`` is its URL)."""
    provider = Provider(config)
    server = ThreadingHTTPServer((host, port), _handler(provider))
    provider.issuer = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with serve(args.config, args.host, args.port) as provider:
        print(f"issuer {provider.issuer}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
