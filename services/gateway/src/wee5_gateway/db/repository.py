"""Every SQL statement of the gateway: webhook receipts, access checks, accounts and refresh
tokens, roles, API keys, leaderboard settings and the audit log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from wee5_gateway.db.models import (
    AUDIT_DONE,
    ApiKey,
    AuditEntry,
    CommunityRole,
    CompanySharedFollower,
    CompanySharedTemplate,
    DiscordIdentity,
    LeaderboardSettings,
    RefreshToken,
    User,
    WebhookReceipt,
    WhopCompanyOwner,
    WhopExperience,
)


async def make_platform_admin(
    connection: AsyncConnection, account_id: uuid.UUID, *, admin: bool = True
) -> bool:
    """Makes the account a platform admin (or no longer one, `admin=False`); False when there
    is no such account."""
    result = await connection.execute(
        update(User).where(User.id == account_id).values(is_platform_admin=admin).returning(User.id)
    )
    return result.first() is not None


class ReceiptRow(NamedTuple):
    provider: str
    webhook_id: str
    event_type: str
    outcome: str
    community_id: str | None
    reason: str | None = None


class ReceiptRepository:
    """Webhook deliveries already acknowledged, per provider and delivery id.

    Each method is one statement, run in autocommit: no BEGIN/COMMIT round trips, and a single
    statement is atomic on its own."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    @classmethod
    @asynccontextmanager
    async def open(cls, engine: AsyncEngine) -> AsyncIterator[ReceiptRepository]:
        async with engine.connect() as connection:
            yield cls(await connection.execution_options(isolation_level="AUTOCOMMIT"))

    async def exists(self, provider: str, webhook_id: str) -> bool:
        found = await self.connection.scalar(
            select(WebhookReceipt.webhook_id).where(
                WebhookReceipt.provider == provider, WebhookReceipt.webhook_id == webhook_id
            )
        )
        return found is not None

    async def record_many(self, rows: Sequence[ReceiptRow]) -> None:
        """Keeps the first receipt of each delivery; one already kept changes nothing."""
        if not rows:
            return
        # One statement, compiled once and cached, run for every row (asyncpg executemany).
        await self.connection.execute(
            insert(WebhookReceipt).on_conflict_do_nothing(
                index_elements=[WebhookReceipt.provider, WebhookReceipt.webhook_id]
            ),
            [row._asdict() for row in rows],
        )

    async def learn_experiences(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Records that webhooks showed each community belongs to its company (a community
        already known keeps its company), so a company's communities are known before its
        owner first opens the app."""
        if not pairs:
            return
        await self.connection.execute(
            insert(WhopExperience).on_conflict_do_nothing(
                index_elements=[WhopExperience.community_id]
            ),
            [
                {"community_id": community_id, "company_id": company_id, "name": ""}
                for community_id, company_id in pairs
            ],
        )

    async def rejected_for(
        self, provider: str, community_id: str, limit: int
    ) -> list[tuple[str, str, str | None, datetime]]:
        """The latest deliveries about `community_id` that were authentic but unusable:
        (webhook id, event type, reason, received at), newest first."""
        rows = await self.connection.execute(
            select(
                WebhookReceipt.webhook_id,
                WebhookReceipt.event_type,
                WebhookReceipt.reason,
                WebhookReceipt.received_at,
            )
            .where(
                WebhookReceipt.provider == provider,
                WebhookReceipt.community_id == community_id,
                WebhookReceipt.outcome == "rejected",
            )
            .order_by(WebhookReceipt.received_at.desc())
            .limit(limit)
        )
        return [(webhook_id, kind, reason, at) for webhook_id, kind, reason, at in rows]

    async def count_for(self, provider: str, community_id: str) -> int:
        """How many deliveries about `community_id` have been acknowledged."""
        count = await self.connection.scalar(
            select(func.count()).where(
                WebhookReceipt.provider == provider, WebhookReceipt.community_id == community_id
            )
        )
        return int(count or 0)


class WhopRepository:
    """Communities learned from Whop, and each Whop company's owner."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def company_of(self, community_id: str) -> str | None:
        company: str | None = await self.session.scalar(
            select(WhopExperience.company_id).where(WhopExperience.community_id == community_id)
        )
        return company

    async def communities_of(self, company_id: str) -> list[str]:
        rows = await self.session.scalars(
            select(WhopExperience.community_id)
            .where(WhopExperience.company_id == company_id)
            .order_by(WhopExperience.community_id)
        )
        return list(rows)

    async def experiences_of(self, company_id: str) -> list[tuple[str, str]]:
        """The company's communities and their names, by name."""
        rows = await self.session.execute(
            select(WhopExperience.community_id, WhopExperience.name)
            .where(WhopExperience.company_id == company_id)
            .order_by(WhopExperience.name, WhopExperience.community_id)
        )
        return [(community_id, name or "") for community_id, name in rows.tuples()]

    async def add_experiences(self, company_id: str, experiences: dict[str, str]) -> None:
        """Records the company's experiences (id -> name); known ones keep their row."""
        if not experiences:
            return
        await self.session.execute(
            insert(WhopExperience)
            .values(
                [
                    {"community_id": community_id, "company_id": company_id, "name": name}
                    for community_id, name in experiences.items()
                ]
            )
            .on_conflict_do_nothing(index_elements=[WhopExperience.community_id])
        )

    async def claim_owner(self, company_id: str, whop_user_id: str) -> str:
        """Makes `whop_user_id` the company's owner unless it has one; returns the owner."""
        await self.session.execute(
            insert(WhopCompanyOwner)
            .values(company_id=company_id, whop_user_id=whop_user_id)
            .on_conflict_do_nothing(index_elements=[WhopCompanyOwner.company_id])
        )
        owner = await self.session.execute(
            select(WhopCompanyOwner.whop_user_id).where(WhopCompanyOwner.company_id == company_id)
        )
        return owner.scalar_one()


class AccessRepository:
    """Roles and API keys, as the access checks read them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def role_of(
        self, community_id: str, account_id: uuid.UUID | None
    ) -> CommunityRole | None:
        if account_id is None:
            return None
        role: CommunityRole | None = await self.session.get(
            CommunityRole, (community_id, account_id)
        )
        return role

    async def is_platform_admin(self, account_id: uuid.UUID) -> bool:
        """Whether the account exists and is a platform admin now."""
        admin = await self.session.scalar(
            select(User.is_platform_admin).where(User.id == account_id)
        )
        return bool(admin)

    async def use_api_key(self, key_hash: str) -> ApiKey | None:
        """The live key with this hash. Its last use is stamped at most once a minute, so a
        busy key costs one read per request, not a write."""
        key: ApiKey | None = await self.session.scalar(
            select(ApiKey).where(
                ApiKey.key_hash == key_hash,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
            )
        )
        if key is not None and (
            key.last_used_at is None or key.last_used_at < datetime.now(UTC) - timedelta(minutes=1)
        ):
            await self.session.execute(
                update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now())
            )
        return key


# The role rows of `communities_only_owned_by`, apart from the other owners it looks for.
_OwnedRole = aliased(CommunityRole)

# First key of the two-key advisory locks that serialise the writes to one refresh-token family
# (the second key is taken from the family id). Two-key locks do not share a key space with the
# one-key lock the migrations take.
_FAMILY_LOCK_CLASS = 0x5EE5_0001


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_user(self, email: str, password_hash: str, display_name: str) -> User | None:
        """The new account, or None when the email is taken (also by a concurrent sign-up)."""
        user: User | None = await self.session.scalar(
            insert(User)
            .values(
                id=uuid.uuid4(),
                email=email,
                password_hash=password_hash,
                display_name=display_name,
                is_platform_admin=False,
            )
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User)
        )
        return user

    async def user_by_email(self, email: str) -> User | None:
        user: User | None = await self.session.scalar(select(User).where(User.email == email))
        return user

    async def user(self, account_id: uuid.UUID) -> User | None:
        user: User | None = await self.session.get(User, account_id)
        return user

    async def set_password_hash(self, account_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            update(User).where(User.id == account_id).values(password_hash=password_hash)
        )

    async def roles_of(self, account_id: uuid.UUID) -> list[CommunityRole]:
        return list(
            await self.session.scalars(
                select(CommunityRole)
                .where(CommunityRole.account_id == account_id)
                .order_by(CommunityRole.created_at, CommunityRole.community_id)
            )
        )

    async def set_email(self, account_id: uuid.UUID, email: str) -> bool:
        """False when another account has this email (also one that took it concurrently)."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    update(User).where(User.id == account_id).values(email=email)
                )
        except IntegrityError:
            return False
        return True

    async def delete_user(self, account_id: uuid.UUID) -> None:
        """Its roles and refresh tokens go with it (foreign keys cascade)."""
        await self.session.execute(delete(User).where(User.id == account_id))

    async def user_by_discord_id(self, discord_user_id: str) -> User | None:
        user: User | None = await self.session.scalar(
            select(User)
            .join(DiscordIdentity, DiscordIdentity.account_id == User.id)
            .where(DiscordIdentity.discord_user_id == discord_user_id)
        )
        return user

    async def link_discord(self, discord_user_id: str, account_id: uuid.UUID) -> bool:
        """False when the Discord user has an account already (also one linked concurrently)."""
        linked = await self.session.scalar(
            insert(DiscordIdentity)
            .values(discord_user_id=discord_user_id, account_id=account_id)
            .on_conflict_do_nothing()
            .returning(DiscordIdentity.discord_user_id)
        )
        return linked is not None

    async def set_linked_role(
        self, community_id: str, account_id: uuid.UUID, role: str, member_user_id: str
    ) -> bool:
        """Makes the account `role` in the community, linked to `member_user_id`; an owner stays
        owner. False when another account is linked to that member id there."""
        statement = insert(CommunityRole).values(
            community_id=community_id,
            account_id=account_id,
            role=role,
            member_user_id=member_user_id,
        )
        statement = statement.on_conflict_do_update(
            index_elements=[CommunityRole.community_id, CommunityRole.account_id],
            set_={"role": role, "member_user_id": member_user_id, "updated_at": func.now()},
            where=CommunityRole.role != "owner",
        )
        try:
            async with self.session.begin_nested():
                await self.session.execute(statement)
        except IntegrityError:
            return False
        return True

    async def drop_linked_roles(
        self, account_id: uuid.UUID, member_user_id: str, keep: Collection[str]
    ) -> list[str]:
        """Removes the account's roles linked to `member_user_id` outside the communities in
        `keep`, owners' roles excepted; the communities whose role went."""
        dropped = await self.session.scalars(
            delete(CommunityRole)
            .where(
                CommunityRole.account_id == account_id,
                CommunityRole.member_user_id == member_user_id,
                CommunityRole.role != "owner",
                CommunityRole.community_id.not_in(list(keep)),
            )
            .returning(CommunityRole.community_id)
        )
        return list(dropped)

    async def communities_only_owned_by(self, account_id: uuid.UUID) -> list[str]:
        """The communities in which this account is the one owner.

        The owners' rows of its communities are locked first (until the transaction ends), so
        two owners of one community deleting their accounts at once cannot both find the other
        still there."""
        owned = select(_OwnedRole.community_id).where(
            _OwnedRole.account_id == account_id, _OwnedRole.role == "owner"
        )
        await self.session.execute(
            select(CommunityRole.account_id)
            .where(CommunityRole.community_id.in_(owned), CommunityRole.role == "owner")
            .order_by(CommunityRole.community_id, CommunityRole.account_id)
            .with_for_update()
        )
        other_owner = select(CommunityRole.account_id).where(
            CommunityRole.community_id == _OwnedRole.community_id,
            CommunityRole.role == "owner",
            CommunityRole.account_id != account_id,
        )
        return list(
            await self.session.scalars(
                select(_OwnedRole.community_id)
                .where(
                    _OwnedRole.account_id == account_id,
                    _OwnedRole.role == "owner",
                    ~other_owner.exists(),
                )
                .order_by(_OwnedRole.community_id)
            )
        )

    async def add_refresh_token(
        self,
        account_id: uuid.UUID,
        family_id: uuid.UUID,
        token_hash: str,
        expires_at: datetime,
        *,
        user_agent: str | None = None,
        client_ip: str | None = None,
    ) -> None:
        self.session.add(
            RefreshToken(
                account_id=account_id,
                family_id=family_id,
                token_hash=token_hash,
                expires_at=expires_at,
                user_agent=user_agent,
                client_ip=client_ip,
            )
        )
        await self.session.flush()

    async def live_sessions(self, account_id: uuid.UUID) -> list[tuple[RefreshToken, datetime]]:
        """The account's sessions that can still refresh, newest activity first: the live
        token of each (unused, unrevoked, unexpired; one per family) with the time its family
        began."""
        began = (
            select(RefreshToken.family_id, func.min(RefreshToken.issued_at).label("began_at"))
            .where(RefreshToken.account_id == account_id)
            .group_by(RefreshToken.family_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(RefreshToken, began.c.began_at)
            .join(began, began.c.family_id == RefreshToken.family_id)
            .where(
                RefreshToken.account_id == account_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > func.now(),
            )
            .order_by(RefreshToken.issued_at.desc(), RefreshToken.id)
        )
        return [(token, began_at) for token, began_at in rows]

    async def is_family_of(self, account_id: uuid.UUID, family_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(RefreshToken.id)
            .where(RefreshToken.account_id == account_id, RefreshToken.family_id == family_id)
            .limit(1)
        )
        return found is not None

    async def unrevoked_families(self, account_id: uuid.UUID) -> list[uuid.UUID]:
        """The families of the account with a token not yet revoked, in a fixed order (the
        order their locks are taken in, so two revocations cannot deadlock)."""
        return list(
            await self.session.scalars(
                select(RefreshToken.family_id)
                .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
                .distinct()
                .order_by(RefreshToken.family_id)
            )
        )

    async def family_of(self, token_hash: str) -> uuid.UUID | None:
        """The family of a refresh token, read without locking (see `lock_family`)."""
        family_id: uuid.UUID | None = await self.session.scalar(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash)
        )
        return family_id

    async def lock_family(self, family_id: uuid.UUID) -> None:
        """Waits for, then holds until the transaction ends, the one lock every rotation and
        revocation of this family takes first. Row locks alone would let a revocation miss a
        successor token inserted by a rotation that committed while the revocation waited."""
        await self.session.execute(
            select(
                func.pg_advisory_xact_lock(
                    _FAMILY_LOCK_CLASS, int.from_bytes(family_id.bytes[:4], "big", signed=True)
                )
            )
        )

    async def refresh_token_for_update(self, token_hash: str) -> RefreshToken | None:
        """The token as committed now (not as this session may have loaded it), row-locked."""
        token: RefreshToken | None = await self.session.scalar(
            select(RefreshToken)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return token

    async def mark_used(self, token_id: uuid.UUID) -> None:
        await self.session.execute(
            update(RefreshToken).where(RefreshToken.id == token_id).values(used_at=func.now())
        )

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )


class RolesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, community_id: str) -> list[CommunityRole]:
        return list(
            await self.session.scalars(
                select(CommunityRole)
                .where(CommunityRole.community_id == community_id)
                .order_by(CommunityRole.created_at, CommunityRole.account_id)
            )
        )

    async def get_for_update(
        self, community_id: str, account_id: uuid.UUID
    ) -> CommunityRole | None:
        role: CommunityRole | None = await self.session.scalar(
            select(CommunityRole)
            .where(
                CommunityRole.community_id == community_id,
                CommunityRole.account_id == account_id,
            )
            .with_for_update()
        )
        return role

    async def count_owners(self, community_id: str) -> int:
        # Locks the owners' rows so two concurrent demotions cannot both leave "one other owner".
        owners = await self.session.scalars(
            select(CommunityRole.account_id)
            .where(CommunityRole.community_id == community_id, CommunityRole.role == "owner")
            .with_for_update()
        )
        return len(list(owners))

    async def account_exists(self, account_id: uuid.UUID) -> bool:
        return await self.session.get(User, account_id) is not None

    async def member_id_taken(
        self, community_id: str, member_user_id: str, account_id: uuid.UUID
    ) -> bool:
        other = await self.session.scalar(
            select(CommunityRole.account_id).where(
                CommunityRole.community_id == community_id,
                CommunityRole.member_user_id == member_user_id,
                CommunityRole.account_id != account_id,
            )
        )
        return other is not None

    async def delete(self, role: CommunityRole) -> None:
        await self.session.delete(role)
        await self.session.flush()


class ApiKeysRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, community_id: str) -> list[ApiKey]:
        return list(
            await self.session.scalars(
                select(ApiKey)
                .where(ApiKey.community_id == community_id)
                .order_by(ApiKey.created_at.desc())
            )
        )

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        return key

    async def revoke(self, community_id: str, key_id: uuid.UUID) -> ApiKey | None:
        """The key, revoked now if it was live; None if this community has no such key."""
        key: ApiKey | None = await self.session.scalar(
            select(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.community_id == community_id)
            .with_for_update()
        )
        if key is not None and key.revoked_at is None:
            await self.session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=func.now())
            )
            key.revoked_at = datetime.now(UTC)
        return key


class AuditRepository:
    """The audit log: entries added, completed when they were recorded ahead of a downstream
    change, and read newest first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, entry: AuditEntry) -> AuditEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def complete(
        self,
        entry_id: int,
        *,
        target: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        await self.session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == entry_id)
            .values(status=AUDIT_DONE, target=target, before=before, after=after)
        )

    async def discard(self, entry_id: int) -> None:
        await self.session.execute(delete(AuditEntry).where(AuditEntry.id == entry_id))

    async def earlier_entry(
        self, community_id: str | None, action: str, idempotency_key: str, *, newer_than: int
    ) -> AuditEntry | None:
        """The first entry of the same change (same action and idempotency key) recorded
        before entry `newer_than`: a retry's entry defers to it."""
        entry: AuditEntry | None = await self.session.scalar(
            select(AuditEntry)
            .where(
                AuditEntry.community_id == community_id,
                AuditEntry.action == action,
                AuditEntry.idempotency_key == idempotency_key,
                AuditEntry.id < newer_than,
            )
            .order_by(AuditEntry.id)
            .limit(1)
            .with_for_update()
        )
        return entry

    async def page(
        self, community_id: str, *, before_id: int | None, limit: int
    ) -> list[AuditEntry]:
        """Newest first; `before_id` is the cursor (the last id of the previous page)."""
        query = select(AuditEntry).where(AuditEntry.community_id == community_id)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        return list(await self.session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


class LeaderboardSettingsRepository:
    """Who may read each community's leaderboard."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def visibility(self, community_id: str) -> str | None:
        """The community's choice; None: it never chose."""
        return await self.session.scalar(
            select(LeaderboardSettings.visibility).where(
                LeaderboardSettings.community_id == community_id
            )
        )

    async def history_visibility(self, community_id: str) -> str | None:
        """Who may read members' XP histories; None: the community never chose."""
        return await self.session.scalar(
            select(LeaderboardSettings.history_visibility).where(
                LeaderboardSettings.community_id == community_id
            )
        )

    async def settings_for_update(self, community_id: str) -> tuple[str, str] | None:
        """(visibility, history visibility), locked; None: the community never chose."""
        row = (
            await self.session.execute(
                select(LeaderboardSettings.visibility, LeaderboardSettings.history_visibility)
                .where(LeaderboardSettings.community_id == community_id)
                .with_for_update()
            )
        ).one_or_none()
        return (row.visibility, row.history_visibility) if row else None

    async def set_visibility(
        self,
        community_id: str,
        visibility: str,
        updated_by: uuid.UUID | None,
        *,
        history_visibility: str | None = None,
    ) -> None:
        """Sets who reads the board (and, when given, members' histories)."""
        values: dict[str, Any] = {"visibility": visibility, "updated_by": updated_by}
        if history_visibility is not None:
            values["history_visibility"] = history_visibility
        await self.session.execute(
            insert(LeaderboardSettings)
            .values(community_id=community_id, **values)
            .on_conflict_do_update(
                index_elements=[LeaderboardSettings.community_id],
                set_={**values, "updated_at": func.now()},
            )
        )


class SharedConfigRepository:
    """A company's shared configuration template, part by part, and who follows each part."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def template(self, company_id: str) -> dict[str, Any]:
        """The parts the company's template holds: part -> body."""
        rows = await self.session.execute(
            select(CompanySharedTemplate.part, CompanySharedTemplate.body).where(
                CompanySharedTemplate.company_id == company_id
            )
        )
        return {row.part: row.body for row in rows}

    async def set_template_part(self, company_id: str, part: str, body: Any) -> None:
        await self.session.execute(
            insert(CompanySharedTemplate)
            .values(company_id=company_id, part=part, body=body)
            .on_conflict_do_update(
                index_elements=[CompanySharedTemplate.company_id, CompanySharedTemplate.part],
                set_={"body": body, "updated_at": func.now()},
            )
        )

    async def followers(self, company_id: str) -> list[CompanySharedFollower]:
        return list(
            await self.session.scalars(
                select(CompanySharedFollower)
                .where(CompanySharedFollower.company_id == company_id)
                .order_by(CompanySharedFollower.part, CompanySharedFollower.community_id)
            )
        )

    async def follow(self, company_id: str, community_id: str, part: str, applied: Any) -> None:
        """The community follows the part, holding `applied` now."""
        await self.session.execute(
            insert(CompanySharedFollower)
            .values(company_id=company_id, community_id=community_id, part=part, applied=applied)
            .on_conflict_do_update(
                index_elements=[CompanySharedFollower.community_id, CompanySharedFollower.part],
                set_={"company_id": company_id, "applied": applied},
            )
        )

    async def unfollow(self, community_id: str, part: str) -> None:
        await self.session.execute(
            delete(CompanySharedFollower).where(
                CompanySharedFollower.community_id == community_id,
                CompanySharedFollower.part == part,
            )
        )

    async def followed(self, community_id: str, parts: Sequence[str]) -> dict[str, Any]:
        """The parts of `parts` the community follows: part -> the part as last applied."""
        rows = await self.session.execute(
            select(CompanySharedFollower.part, CompanySharedFollower.applied).where(
                CompanySharedFollower.community_id == community_id,
                CompanySharedFollower.part.in_(parts),
            )
        )
        return {row.part: row.applied for row in rows}

    async def refresh(self, community_id: str, part: str, applied: Any) -> None:
        """The followed part as the company left it (an apply is not the community's change)."""
        await self.session.execute(
            update(CompanySharedFollower)
            .where(
                CompanySharedFollower.community_id == community_id,
                CompanySharedFollower.part == part,
            )
            .values(applied=applied)
        )

    async def unfollow_all(self, company_id: str, community_id: str) -> list[str]:
        """The community follows no part of the company's template; the parts it followed."""
        rows = await self.session.scalars(
            delete(CompanySharedFollower)
            .where(
                CompanySharedFollower.company_id == company_id,
                CompanySharedFollower.community_id == community_id,
            )
            .returning(CompanySharedFollower.part)
        )
        return sorted(rows)
