"""Message templates members' names go into: announcements (rewards) and Discord welcomes
(the Discord bot) render through this one place.

A template is plain text or markdown with variables in braces (`{member}`, `{level}`, …;
`{{` and `}}` for literal braces). It is parsed, never `str.format`ted: only the variables
its caller names exist, a name outside them is refused with the name in the message, and a
value goes in escaped for where the text is sent, so a display name cannot format the text,
mention `@everyone` or ping anyone but the member it names (`{mention}`, the one variable
inserted as given).
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping, Sequence

from wee5_kit.errors import InvalidField

MAX_TEMPLATE = 1000
# The variable whose value is inserted unescaped: the caller builds it (`discord_mention`).
MENTION = "mention"
SNOWFLAKE = re.compile(r"[0-9]{1,20}")
# Characters markdown (Whop chat, Discord) gives meaning to; escaped in values.
_MARKDOWN = re.compile(r"([\\`*_~|>#\[\]()<:!-])")
_ZERO_WIDTH_SPACE = "\u200b"


def check_template(field: str, template: str, variables: Sequence[str]) -> str:
    """`template` if it only uses `variables`, else `InvalidField` naming `field` and the
    first unknown variable."""
    if len(template) > MAX_TEMPLATE:
        raise InvalidField(field, f"{field} is longer than {MAX_TEMPLATE} characters")
    for _, name, spec, conversion in _parse(field, template):
        if name is None:
            continue
        if name not in variables:
            known = ", ".join(f"{{{v}}}" for v in variables)
            raise InvalidField(
                field,
                f"{field} uses {{{name}}}, which is not a variable; use {known}, "
                "or {{ and }} for literal braces",
            )
        if spec or conversion:
            raise InvalidField(
                field, f"{field}: write {{{name}}} without a format (':' or '!' inside braces)"
            )
    return template


def render(
    template: str,
    values: Mapping[str, str],
    *,
    markdown: bool,
    raw: Collection[str] = (MENTION,),
) -> str:
    """The text to send: the template's literal text as written, each variable's value
    escaped (`raw` ones, built by the caller, as given)."""
    out: list[str] = []
    for literal, name, _, _ in _parse("template", template):
        out.append(literal)
        if name is not None:
            value = values.get(name, "")
            out.append(value if name in raw else escape(value, markdown=markdown))
    return "".join(out)


def discord_mention(user_id: str, fallback: str) -> str:
    """`<@id>` for a Discord user id; else `fallback` escaped (never a ping of someone else)."""
    return f"<@{user_id}>" if SNOWFLAKE.fullmatch(user_id) else escape(fallback, markdown=True)


def escape(value: str, *, markdown: bool) -> str:
    """`value` as text: no markdown (when the target reads it), no mentions (`@everyone`,
    `@here`, `@name`, Discord's `<@id>`), no control characters."""
    value = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    if markdown:
        value = _MARKDOWN.sub(r"\\\1", value)
    return value.replace("@", "@" + _ZERO_WIDTH_SPACE)


def _parse(field: str, template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(template))
    except ValueError as error:
        raise InvalidField(
            field, f"{field} does not parse ({error}); write {{{{ and }}}} for literal braces"
        ) from None
