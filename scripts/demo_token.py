"""`make demo-token`: prints an access token (valid 15 minutes) for the demo community of a
running `make up` (WEE5_DEMO=1): its owner's, or with `--member USER_ID` (`make demo-token
MEMBER=user_1`) a member's linked to that Whop user id, whose account is created the first
time (email `<user id>@members.wee5.local`, password below) and made a member by the owner.

TOKEN=$(make -s demo-token)
curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/api/v1/me
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

from wee5_gateway.demo import DEMO_COMMUNITY, DEMO_EMAIL, DEMO_PASSWORD

# Published like the demo owner's: these accounts exist only on one's own machine.
MEMBER_PASSWORD = "wee5-demo-member-password"


class NoToken(Exception):
    """The gateway would not give the token; the message says what to do."""


def _grant(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    reply = client.post(f"/api/v1/auth/{path}", json=body)
    if reply.status_code == 429:
        raise NoToken(f"sign-ins are rate limited ({reply.headers.get('retry-after')} s to wait)")
    return reply


def sign_in(client: httpx.Client, email: str, password: str) -> dict[str, Any]:
    reply = _grant(client, "login", {"email": email, "password": password})
    if reply.status_code != 200:
        raise NoToken(
            f"could not sign in as {email} ({reply.status_code}): is `make up` running with the "
            "demo (WEE5_DEMO=1, the default)?"
        )
    grant: dict[str, Any] = reply.json()
    return grant


def member_token(client: httpx.Client, owner: str, user_id: str) -> str:
    email = f"{user_id.lower()}@members.wee5.local"
    reply = _grant(client, "register", {"email": email, "password": MEMBER_PASSWORD})
    if reply.status_code == 409:  # made by an earlier run
        grant = sign_in(client, email, MEMBER_PASSWORD)
    elif reply.status_code == 201:
        grant = reply.json()
    else:
        raise NoToken(f"could not create {email} ({reply.status_code}): {reply.text}")
    account_id = grant["account"]["id"]
    role = client.put(
        f"/api/v1/communities/{DEMO_COMMUNITY}/roles/{account_id}",
        json={"role": "member", "member_user_id": user_id},
        headers={"Authorization": f"Bearer {owner}"},
    )
    if role.status_code != 200:
        raise NoToken(
            f"the owner could not make {email} a member ({role.status_code}): {role.text}"
        )
    token: str = grant["access_token"]
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    port = os.environ.get("WEE5_GATEWAY_PORT", "8000")
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}")
    parser.add_argument("--member", metavar="USER_ID", help="a member linked to this user id")
    args = parser.parse_args(argv)
    try:
        with httpx.Client(base_url=args.url, timeout=10) as client:
            owner: str = sign_in(client, DEMO_EMAIL, DEMO_PASSWORD)["access_token"]
            print(member_token(client, owner, args.member) if args.member else owner)
    except NoToken as error:
        print(f"demo-token: {error}", file=sys.stderr)
        return 1
    except httpx.HTTPError as error:
        print(
            f"demo-token: {args.url} does not answer ({error}): start `make up` first",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
