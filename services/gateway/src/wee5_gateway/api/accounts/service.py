"""The rules of accounts and sessions. Never commits: the caller owns the transaction.

A session is a family of refresh tokens started at sign-up or sign-in. Each refresh spends the
presented token and issues its successor in the same family; a token presented twice means it
was copied (stolen, or replayed), so the whole family is revoked and every holder must sign in
again.

An access token names its session (`sid`), so the account's own routes know which session is
asking: a password change keeps that one and revokes the others. Access tokens are not checked
against revocations; one already issued stays valid until it expires.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_gateway.api.accounts.mappers import account_view, community_role_view, session_view
from wee5_gateway.api.accounts.schemas import AccountView, Me, SessionView, TokenGrant
from wee5_gateway.core.access import Principal
from wee5_gateway.core.audit import record_audit
from wee5_gateway.core.problems import Conflict, Forbidden, NotFoundProblem, Unauthenticated
from wee5_gateway.core.security import AccessTokens, Passwords, new_refresh_token, token_hash
from wee5_gateway.db.models import User
from wee5_gateway.db.repository import AccountRepository
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.accounts")

# One answer for an unknown email and a wrong password, so sign-in does not tell which
# addresses have accounts.
BAD_CREDENTIALS = "the email or password is wrong"
# Says no more than that the email cannot be used: not that an account has it (the 409
# itself still does; only a sign-up confirmed by mail could hide that, see the notes).
EMAIL_TAKEN = "this email cannot be used for a new account; if it is yours, sign in with it"
WRONG_CURRENT_PASSWORD = "the current password is wrong"
ACCOUNT_GONE = "the account of this access token no longer exists"
# Long enough for any real browser's; the column is for telling devices apart, not analytics.
MAX_USER_AGENT_LENGTH = 512


@dataclass(frozen=True)
class ClientInfo:
    """Who asked for a session's tokens, kept so the session list can tell devices apart."""

    user_agent: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class DiscordSignIn:
    grant: TokenGrant
    # The communities whose role of the account the sign-in set or dropped.
    changed: frozenset[str]


class RefreshRefused(StrEnum):
    """Why a refresh token bought nothing; the value is the 401's detail."""

    UNKNOWN = "the refresh token is not known; sign in again"
    EXPIRED = "the refresh token has expired; sign in again"
    REVOKED = "the refresh token was revoked; sign in again"
    REUSED = "the refresh token was already used, so its session has been signed out everywhere"


def normalise_email(email: str) -> str:
    return email.strip().lower()


@functools.cache
def _dummy_password_hash(passwords: Passwords) -> str:
    # Verified against when the email is unknown, so that answer takes as long as a wrong
    # password does.
    return passwords.hash(secrets.token_urlsafe(16))


class AccountService:
    """Cheap to make; each method works in the caller's session and transaction."""

    def __init__(self, passwords: Passwords, tokens: AccessTokens, refresh_ttl: timedelta) -> None:
        self.passwords = passwords
        self.tokens = tokens
        self.refresh_ttl = refresh_ttl

    async def register(
        self,
        session: AsyncSession,
        email: str,
        password: str,
        display_name: str | None,
        client: ClientInfo,
    ) -> TokenGrant:
        """A new account and its first session, or 409 when the email is taken."""
        accounts = AccountRepository(session)
        # Hashing (tens of ms of CPU) runs off the event loop, and before any query, so no
        # database connection waits on it.
        password_hash = await asyncio.to_thread(self.passwords.hash, password)
        user = await accounts.create_user(
            normalise_email(email), password_hash, (display_name or "").strip()
        )
        if user is None:
            raise Conflict(EMAIL_TAKEN)
        log.info("account registered", account_id=str(user.id))
        return await self._issue(accounts, user, _new_session(), client)

    async def login(
        self, session: AsyncSession, email: str, password: str, client: ClientInfo
    ) -> TokenGrant:
        """A new session for the account with these credentials, or 401."""
        accounts = AccountRepository(session)
        user = await accounts.user_by_email(normalise_email(email))
        if user is None:
            dummy = await asyncio.to_thread(_dummy_password_hash, self.passwords)
            await asyncio.to_thread(self.passwords.verify, dummy, password)
            raise Unauthenticated(BAD_CREDENTIALS)
        if not await asyncio.to_thread(self.passwords.verify, user.password_hash, password):
            raise Unauthenticated(BAD_CREDENTIALS)
        if self.passwords.needs_rehash(user.password_hash):
            # The hasher's parameters were raised since this hash was made.
            rehashed = await asyncio.to_thread(self.passwords.hash, password)
            await accounts.set_password_hash(user.id, rehashed)
        return await self._issue(accounts, user, _new_session(), client)

    async def discord_sign_in(
        self,
        session: AsyncSession,
        discord_user_id: str,
        display_name: str,
        roles: dict[str, str],
        client: ClientInfo,
    ) -> DiscordSignIn:
        """A new session for the account of this Discord user (made at its first sign-in),
        whose Discord-linked roles become `roles` (community id -> admin | member): roles
        linked to this Discord user elsewhere go, an owner's role stays as it is. Names the
        communities whose role of the account it set or dropped, for the caller to forget
        once committed."""
        accounts = AccountRepository(session)
        user = await accounts.user_by_discord_id(discord_user_id)
        if user is None:
            # No password signs in to it: the hash is of a secret nobody keeps.
            unusable = await asyncio.to_thread(self.passwords.hash, secrets.token_urlsafe(32))
            user = await accounts.create_user(
                f"discord-{discord_user_id}@users.discord.invalid", unusable, display_name
            )
            if user is None or not await accounts.link_discord(discord_user_id, user.id):
                raise Conflict("this Discord user's account is being made; sign in again")
            log.info("account registered with Discord", account_id=str(user.id))
        for community_id, role in roles.items():
            if not await accounts.set_linked_role(community_id, user.id, role, discord_user_id):
                log.warning(
                    "Discord id linked to another account in the community; role not given",
                    account_id=str(user.id),
                    community_id=community_id,
                )
        dropped = await accounts.drop_linked_roles(user.id, discord_user_id, keep=roles.keys())
        grant = await self._issue(accounts, user, _new_session(), client)
        return DiscordSignIn(grant, frozenset(roles.keys() | set(dropped)))

    async def refresh(
        self,
        session: AsyncSession,
        presented: str,
        client: ClientInfo,
        before_spending: Callable[[uuid.UUID], Awaitable[None]] | None = None,
    ) -> TokenGrant | RefreshRefused:
        """Spends the presented refresh token and issues the next pair in its family.
        `before_spending(account_id)` may refuse (raise) first: the token is then unspent.

        A refusal is returned, not raised: revoking a family on reuse is a write the caller
        must commit before it answers 401."""
        accounts = AccountRepository(session)
        presented_hash = token_hash(presented)
        family_id = await accounts.family_of(presented_hash)
        if family_id is None:
            return RefreshRefused.UNKNOWN
        await accounts.lock_family(family_id)
        token = await accounts.refresh_token_for_update(presented_hash)
        if token is None:  # its account was deleted meanwhile
            return RefreshRefused.UNKNOWN
        if token.used_at is not None or token.revoked_at is not None:
            await accounts.revoke_family(family_id)
            if token.used_at is not None:
                log.warning(
                    "spent refresh token presented again; its family is revoked",
                    account_id=str(token.account_id),
                    family_id=str(family_id),
                )
                return RefreshRefused.REUSED
            return RefreshRefused.REVOKED
        if token.expires_at <= datetime.now(UTC):
            return RefreshRefused.EXPIRED
        user = await accounts.user(token.account_id)
        if user is None:
            return RefreshRefused.UNKNOWN
        if before_spending is not None:
            await before_spending(user.id)
        await accounts.mark_used(token.id)
        return await self._issue(accounts, user, family_id, client)

    async def logout(self, session: AsyncSession, presented: str) -> None:
        """Revokes the session (the family) of the presented refresh token; an unknown token
        is no error, the session is gone either way."""
        accounts = AccountRepository(session)
        family_id = await accounts.family_of(token_hash(presented))
        if family_id is None:
            return
        await accounts.lock_family(family_id)
        await accounts.revoke_family(family_id)

    async def me(self, session: AsyncSession, account_id: uuid.UUID) -> Me | None:
        """The account and its roles; None if the account no longer exists."""
        accounts = AccountRepository(session)
        user = await accounts.user(account_id)
        if user is None:
            return None
        roles = await accounts.roles_of(account_id)
        return Me(account=account_view(user), roles=[community_role_view(role) for role in roles])

    async def change_password(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        current_password: str,
        new_password: str,
        current_session: uuid.UUID | None,
    ) -> None:
        """Sets the new password and signs out every other session of the account; the one
        asking (`current_session`) stays signed in."""
        accounts = AccountRepository(session)
        await self._verified_account(accounts, account_id, current_password)
        new_hash = await asyncio.to_thread(self.passwords.hash, new_password)
        await accounts.set_password_hash(account_id, new_hash)
        revoked = await _revoke_sessions(accounts, account_id, keep=current_session)
        log.info("password changed", account_id=str(account_id), sessions_revoked=revoked)

    async def change_email(
        self, session: AsyncSession, account_id: uuid.UUID, current_password: str, email: str
    ) -> AccountView:
        """The account with its new email, or 409 when another account has it."""
        accounts = AccountRepository(session)
        user = await self._verified_account(accounts, account_id, current_password)
        if not await accounts.set_email(account_id, normalise_email(email)):
            raise Conflict(EMAIL_TAKEN)
        user.email = normalise_email(email)
        return account_view(user)

    async def delete_account(
        self, session: AsyncSession, principal: Principal, current_password: str
    ) -> None:
        """Deletes the account with its roles and sessions, each role recorded in its
        community's audit log. Refused (409) while it is the one owner of a community. What
        members did in communities (XP, history) is kept there, no longer linked to it."""
        account_id = signed_in_account(principal)
        accounts = AccountRepository(session)
        await self._verified_account(accounts, account_id, current_password)
        sole_owner_of = await accounts.communities_only_owned_by(account_id)
        if sole_owner_of:
            raise Conflict(
                "this account is the only owner of "
                + ", ".join(sole_owner_of)
                + "; make another account owner there first"
            )
        for role in await accounts.roles_of(account_id):
            await record_audit(
                session,
                principal,
                community_id=role.community_id,
                action="account.deleted",
                target=f"account:{account_id}",
                before={"role": role.role, "member_user_id": role.member_user_id},
            )
        await accounts.delete_user(account_id)
        log.info("account deleted", account_id=str(account_id))

    async def sessions(
        self, session: AsyncSession, account_id: uuid.UUID, current_session: uuid.UUID | None
    ) -> list[SessionView]:
        live = await AccountRepository(session).live_sessions(account_id)
        return [session_view(token, began, current_session) for token, began in live]

    async def revoke_session(
        self, session: AsyncSession, account_id: uuid.UUID, session_id: uuid.UUID
    ) -> None:
        """Signs one of the account's own sessions out; 404 for any other id."""
        accounts = AccountRepository(session)
        if not await accounts.is_family_of(account_id, session_id):
            raise NotFoundProblem(f"this account has no session {session_id}")
        await accounts.lock_family(session_id)
        await accounts.revoke_family(session_id)

    async def revoke_other_sessions(
        self, session: AsyncSession, account_id: uuid.UUID, current_session: uuid.UUID | None
    ) -> int:
        """Signs out every session of the account but the one asking; how many there were."""
        return await _revoke_sessions(AccountRepository(session), account_id, keep=current_session)

    async def _verified_account(
        self, accounts: AccountRepository, account_id: uuid.UUID, password: str
    ) -> User:
        user = await accounts.user(account_id)
        if user is None:
            raise Unauthenticated(ACCOUNT_GONE)
        if not await asyncio.to_thread(self.passwords.verify, user.password_hash, password):
            raise Forbidden(WRONG_CURRENT_PASSWORD)
        return user

    async def _issue(
        self, accounts: AccountRepository, user: User, family_id: uuid.UUID, client: ClientInfo
    ) -> TokenGrant:
        access_token, _ = self.tokens.issue(
            user.id, is_platform_admin=user.is_platform_admin, session_id=family_id
        )
        refresh_token = new_refresh_token()
        await accounts.add_refresh_token(
            user.id,
            family_id,
            token_hash(refresh_token),
            datetime.now(UTC) + self.refresh_ttl,
            user_agent=client.user_agent[:MAX_USER_AGENT_LENGTH] if client.user_agent else None,
            client_ip=client.ip,
        )
        return TokenGrant(
            account=account_view(user),
            access_token=access_token,
            token_type="Bearer",
            expires_in=int(self.tokens.ttl.total_seconds()),
            refresh_token=refresh_token,
            refresh_expires_in=int(self.refresh_ttl.total_seconds()),
        )


def signed_in_account(principal: Principal) -> uuid.UUID:
    """The caller's account id; 401 for API keys and anonymous callers."""
    if principal.account_id is None:
        raise Unauthenticated("sign in: this needs an account's access token")
    return principal.account_id


async def _revoke_sessions(
    accounts: AccountRepository, account_id: uuid.UUID, *, keep: uuid.UUID | None
) -> int:
    """Revokes every session of the account except `keep` (all of them when it is None: an
    access token from before sessions were named cannot say which one is asking)."""
    families = [
        family for family in await accounts.unrevoked_families(account_id) if family != keep
    ]
    for family_id in families:
        await accounts.lock_family(family_id)
        await accounts.revoke_family(family_id)
    return len(families)


def _new_session() -> uuid.UUID:
    """A new refresh-token family: every token rotated from this sign-in shares it."""
    return uuid.uuid4()
