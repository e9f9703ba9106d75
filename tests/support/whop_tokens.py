"""Whop user tokens as Whop's proxy signs them (ES256, issuer `urn:whopcom:exp-proxy`, the app
id as audience, the Whop user id as subject), from a key pair of the tests' own, and the JWKS
that publishes its public half."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ISSUER = "urn:whopcom:exp-proxy"
APP_ID = "app_wee5test"


@dataclass
class WhopSigningKey:
    kid: str = field(default_factory=lambda: f"key_{uuid.uuid4().hex[:8]}")
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "ES256"}

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def token(
        self,
        user_id: str,
        *,
        audience: Any = APP_ID,
        issuer: str = ISSUER,
        expires_in: float = 300,
    ) -> str:
        now = int(time.time())
        claims = {"sub": user_id, "aud": audience, "iss": issuer, "iat": now}
        claims["exp"] = now + int(expires_in)
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})


def whop_user(token: str) -> dict[str, str]:
    return {"x-whop-user-token": token}


def hs256_forged(user_id: str, kid: str) -> str:
    """A token shaped like Whop's but signed with HMAC: must never be accepted."""
    now = int(time.time())
    claims = {"sub": user_id, "aud": APP_ID, "iss": ISSUER, "iat": now, "exp": now + 300}
    return jwt.encode(claims, "guessable-secret" * 4, algorithm="HS256", headers={"kid": kid})
