#!/usr/bin/env python3
"""Mint an RS256 token for the docker-compose demo, signed with the DEMO ONLY key.

    python3 envoy/compose/mint_token.py dana --roles nurse --tenant ward-3
    curl -H "authorization: Bearer $(python3 envoy/compose/mint_token.py dana)" localhost:10000/patients/7

The key (demo-signing-key.pem) is public: the tokens it makes prove nothing outside the demo.
Issuer and audience match the jwt_authn provider in envoy/compose/envoy.yaml. Needs PyJWT and
cryptography (both pinned in host-tests/requirements.txt).
"""
import argparse
import time
from pathlib import Path

import jwt

HERE = Path(__file__).resolve().parent
KEY_PATH = HERE / "demo-signing-key.pem"
KID = "proxy-audit-demo-only"
ISSUER = "https://idp.demo.proxy-audit.invalid"
AUDIENCE = "proxy-audit-demo"


def mint(sub, roles=(), tenant=None, act=None, ttl=600, **extra):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + ttl, **extra}
    if roles:
        claims["roles"] = list(roles)
    if tenant:
        claims["tenant"] = tenant
    if act:
        claims["act"] = {"sub": act}
    return jwt.encode(claims, KEY_PATH.read_bytes(), algorithm="RS256", headers={"kid": KID})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sub", help="the subject (user id, or svc-... for a service)")
    ap.add_argument("--roles", nargs="*", default=[])
    ap.add_argument("--tenant")
    ap.add_argument("--act", help="the user a service acts for (act.sub)")
    ap.add_argument("--ttl", type=int, default=600, help="seconds until exp")
    a = ap.parse_args()
    print(mint(a.sub, a.roles, a.tenant, a.act, a.ttl))
