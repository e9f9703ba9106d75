"""Every SQL statement of accounts and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_gateway.models import CommunityRole, RefreshToken, User

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

    async def add_refresh_token(
        self, account_id: uuid.UUID, family_id: uuid.UUID, token_hash: str, expires_at: datetime
    ) -> None:
        self.session.add(
            RefreshToken(
                account_id=account_id,
                family_id=family_id,
                token_hash=token_hash,
                expires_at=expires_at,
            )
        )
        await self.session.flush()

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
