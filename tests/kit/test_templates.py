"""The one template renderer (announcements, Discord welcomes): only the caller's variables,
values escaped, `{mention}` the one way to ping."""

from __future__ import annotations

import pytest

from wee5_kit.errors import InvalidField
from wee5_kit.templates import check_template, discord_mention, render

VARIABLES = ("member", "mention", "community")


def test_a_template_naming_an_unknown_variable_is_refused_with_its_name() -> None:
    with pytest.raises(InvalidField) as refused:
        check_template("welcome_template", "hi {password}", VARIABLES)

    assert refused.value.field == "welcome_template"
    assert "{password}" in refused.value.message


def test_values_cannot_ping_or_format_and_the_mention_pings_only_the_member() -> None:
    values = {
        "member": "@everyone **bold** {community}",
        "mention": discord_mention("80351110224678912", "Ada"),
        "community": "Engines",
    }

    text = render("Welcome {mention} ({member}) to {community}!", values, markdown=True)

    assert text.startswith("Welcome <@80351110224678912> (@\u200beveryone \\*\\*bold\\*\\* {")
    assert text.endswith(") to Engines!")
    assert discord_mention("not-a-snowflake", "@here") == "@\u200bhere"
