"""A stand-in for Better Auth's JWKS and get-session endpoints, with keys the tests generate."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ALGORITHMS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"]


class SigningKey:
    def __init__(self, algorithm: str, kid: str | None = None) -> None:
        self.algorithm = algorithm
        self.kid = kid or uuid.uuid4().hex
        if algorithm == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "ES512":
            self.private = ec.generate_private_key(ec.SECP521R1())
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public = self.private.public_key()

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """The public key as Better Auth publishes it."""
        jwk = jwt.get_algorithm_by_name(self.algorithm).to_jwk(self.public, as_dict=True)
        return {**jwk, "alg": self.algorithm, "kid": self.kid, **extra}

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **headers}
        )


def better_auth_claims(issuer: str, subject: Any = "ba-user-1", **overrides: Any) -> dict:
    """Claims shaped like the ones Better Auth 1.x's jwt() plugin issues."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "iat": now,
        "exp": now + dt.timedelta(minutes=15),
        "iss": issuer,
        "aud": issuer,
        "sub": subject,
        "id": subject,
        "name": "Alice",
        "email": "alice@example.com",
        "emailVerified": False,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_token(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    """A JWT put together by hand, for the shapes PyJWT (rightly) refuses to produce."""
    body = json.dumps(claims, default=lambda d: int(d.timestamp()))
    return f"{b64url(json.dumps(header).encode())}.{b64url(body.encode())}.{signature}"


class FakeBetterAuth:
    """Serves `{url}/api/auth/jwks` and `{url}/api/auth/get-session` on a loopback port."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.sessions: dict[str, str] = {}  # session token -> user id
        # Raw answers that override the well-behaved ones, and a pause between their bytes.
        self.jwks_answer: bytes | None = None
        self.session_answer: bytes | None = None
        self.drip_seconds = 0.0
        self.requests: dict[str, int] = {"jwks": 0, "get-session": 0}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop answering: connections are refused from now on."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/api/auth/jwks":
                    fake.requests["jwks"] += 1
                    if fake.jwks_answer is not None:
                        self._raw(fake.jwks_answer)
                    else:
                        self._json(200, {"keys": fake.published})
                elif self.path == "/api/auth/get-session":
                    fake.requests["get-session"] += 1
                    if fake.session_answer is not None:
                        self._raw(fake.session_answer)
                        return
                    scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                    user_id = fake.sessions.get(token) if scheme == "Bearer" else None
                    if user_id is None:
                        self._json(200, None)
                    else:
                        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
                        self._json(
                            200,
                            {
                                "session": {"userId": user_id, "expiresAt": expires.isoformat()},
                                "user": {"id": user_id, "name": "Alice"},
                            },
                        )
                else:
                    self._json(404, {"message": "not found"})

            def _raw(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not fake.drip_seconds:
                    self.wfile.write(data)
                    return
                for byte in data:  # one byte at a time, for as long as the client listens
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(fake.drip_seconds)

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler
