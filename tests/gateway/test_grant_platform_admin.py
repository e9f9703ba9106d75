"""`python -m wee5_gateway grant-platform-admin ACCOUNT_ID`: by account id (an email is
ambiguous before it is verified), with a clear error for an unknown or malformed id."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.gateway import new_account
from wee5_gateway.db.models import User


def grant(account_id: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wee5_gateway", "grant-platform-admin", account_id],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_grant_platform_admin_by_account_id(
    database_url: str, test_env: dict[str, str], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    account_id = await new_account(sessionmaker)
    done = await asyncio.to_thread(grant, str(account_id), test_env)
    assert done.returncode == 0, done.stderr
    async with sessionmaker() as session:
        user = await session.get(User, account_id)
    assert user is not None
    assert user.is_platform_admin


async def test_an_unknown_account_id_is_a_clear_error(
    database_url: str, test_env: dict[str, str]
) -> None:
    unknown = uuid.uuid4()
    done = await asyncio.to_thread(grant, str(unknown), test_env)
    assert done.returncode == 1
    assert f"no account with id {unknown}; register it first" in done.stderr


async def test_an_email_is_refused_as_not_an_account_id(
    database_url: str, test_env: dict[str, str]
) -> None:
    done = await asyncio.to_thread(grant, "owner@example.test", test_env)
    assert done.returncode == 2
    assert "is not an account id" in done.stderr


async def test_revoke_platform_admin_by_account_id(
    database_url: str, test_env: dict[str, str], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    account_id = await new_account(sessionmaker)
    assert (await asyncio.to_thread(grant, str(account_id), test_env)).returncode == 0

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wee5_gateway", "revoke-platform-admin", str(account_id)],
        env={**os.environ, **test_env},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    async with sessionmaker() as session:
        user = await session.get(User, account_id)
    assert user is not None
    assert not user.is_platform_admin
