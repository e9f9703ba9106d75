"""Sends one signed Whop `chat.message.created` webhook to a running gateway (a demo aid):
`scripts/send_whop_event.py chat.message.created` with the same options.

uv run python scripts/send_whop_message.py --secret ws_demo --community demo --user user_1
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

# The options before the event's own (--url, --secret, --company) go before its name.
_SHARED = ("--url", "--secret", "--company")


def event_argv(argv: list[str]) -> list[str]:
    shared: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in _SHARED:
            shared.append(arg)
            if "=" not in arg:
                shared.append(next(args, ""))
        else:
            rest.append(arg)
    return [*shared, "chat.message.created", *rest]


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *event_argv(sys.argv[1:])]
    runpy.run_path(str(Path(__file__).with_name("send_whop_event.py")), run_name="__main__")
