"""Importing members and their XP from another bot (MEE6's leaderboard API, JSON/CSV exports).

An import mirrors the other bot's XP into `import` ledger entries: per (community, source,
member) it keeps the XP imported so far and credits only the difference, so importing the
same data twice changes nothing and importing newer numbers adds what was gained since. A
lower number than already imported changes nothing: XP is never taken back by a third party
(an admin adjustment can). Imported XP is history: it counts in the all-time board, not in the
day/week/month boards, and levels reached through it are not announced as `xp.level_up`, so
level rewards are not granted retroactively for levels earned in the other bot.

Message counts are kept beside the imported XP (`xp.imported_xp.message_count`), not added to
the member's activity counters: those count the activities recorded in WEE5's own ledger.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.communities import validate_community_id
from wee5_kit.logging import get_logger
from wee5_kit.queries import lock_for_transaction
from wee5_xp.awards import Award
from wee5_xp.errors import ImportWouldCountTwice, InvalidImport
from wee5_xp.jobs import TaskContext
from wee5_xp.locks import xp_lock
from wee5_xp.progress import progress
from wee5_xp.repository import PointsRepository, SyncStateRepository
from wee5_xp.service import XpService
from wee5_xp.syncs.mee6 import valid_guild_id

log = get_logger("wee5.xp.imports")

# Sources an import may name (the `Source` values of the contract).
IMPORT_SOURCES = ("mee6", "discord", "whop", "api")
MAX_IMPORT_BATCH = 1000
MAX_IMPORTED_XP = 10**12


@dataclass(frozen=True)
class ImportedMember:
    user_id: str
    xp: int
    message_count: int = 0


@dataclass
class ImportReport:
    received: int = 0
    # Members whose imported XP grew (each got one `import` ledger entry).
    credited: int = 0
    xp_added: int = 0

    def add(self, other: ImportReport) -> None:
        self.received += other.received
        self.credited += other.credited
        self.xp_added += other.xp_added


def validate_members(members: Sequence[ImportedMember]) -> None:
    seen: set[str] = set()
    for index, member in enumerate(members):
        where = f"member {index + 1}"
        if not member.user_id or len(member.user_id) > 64:
            raise InvalidImport(f"{where}: user_id is required and at most 64 characters")
        if member.user_id in seen:
            raise InvalidImport(f"{where}: user {member.user_id} appears twice")
        seen.add(member.user_id)
        if not 0 <= member.xp <= MAX_IMPORTED_XP:
            raise InvalidImport(f"{where}: xp must be between 0 and {MAX_IMPORTED_XP}")
        if member.message_count < 0:
            raise InvalidImport(f"{where}: message_count must not be negative")


class MemberImporter:
    def __init__(self, xp: XpService) -> None:
        self.xp = xp

    async def import_members(
        self,
        session: AsyncSession,
        community_id: str,
        source: str,
        members: Sequence[ImportedMember],
    ) -> ImportReport:
        """Imports one batch (at most MAX_IMPORT_BATCH members) in the caller's transaction."""
        validate_community_id(community_id)
        if source not in IMPORT_SOURCES:
            raise InvalidImport(f"source must be one of {', '.join(IMPORT_SOURCES)}")
        if len(members) > MAX_IMPORT_BATCH:
            raise InvalidImport(f"at most {MAX_IMPORT_BATCH} members per import batch")
        validate_members(members)
        if source == "mee6" and await SyncStateRepository(session).mee6_link(community_id):
            raise ImportWouldCountTwice(community_id)
        # Two imports of one community and source would both read the old numbers.
        await lock_for_transaction(session, xp_lock("import", community_id, source))
        repo = PointsRepository(session)
        before = await repo.imported(community_id, source, [m.user_id for m in members])
        report = ImportReport(received=len(members))
        for member in members:
            earlier = before.get(member.user_id)
            imported = earlier.xp if earlier else 0
            delta = member.xp - imported
            if delta > 0:
                await self.xp.award(
                    session,
                    Award(
                        community_id=community_id,
                        user_id=member.user_id,
                        delta=delta,
                        reason="import",
                        source=source,
                        imported=True,
                    ),
                )
                report.credited += 1
                report.xp_added += delta
            message_count = max(member.message_count, earlier.message_count if earlier else 0)
            if earlier is None or delta > 0 or message_count != earlier.message_count:
                await repo.save_imported(
                    community_id, source, member.user_id, max(member.xp, imported), message_count
                )
        return report


def batches(members: Sequence[ImportedMember]) -> Iterator[Sequence[ImportedMember]]:
    for start in range(0, len(members), MAX_IMPORT_BATCH):
        yield members[start : start + MAX_IMPORT_BATCH]


def parse_export(data: bytes, filename: str) -> list[ImportedMember]:
    """Members of a JSON or CSV export, by file extension (or content when it has none).

    JSON: a MEE6 leaderboard page (`{"players": [...]}`), `{"members": [...]}` or a list; each
    entry has `id` or `user_id`, `xp`, optionally `message_count`. CSV: a header row with
    `user_id` (or `id`), `xp` and optionally `message_count`.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidImport(f"{filename}: not UTF-8 text") from None
    lowered = filename.lower()
    looks_json = text.lstrip()[:1] in ("[", "{")
    if lowered.endswith(".json") or (not lowered.endswith(".csv") and looks_json):
        members = _parse_json(text, filename)
    else:
        members = _parse_csv(text, filename)
    validate_members(members)
    return members


def _parse_json(text: str, filename: str) -> list[ImportedMember]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidImport(f"{filename}: invalid JSON at line {error.lineno}") from None
    entries: Any = document
    if isinstance(document, dict):
        entries = document.get("players", document.get("members"))
    if not isinstance(entries, list):
        raise InvalidImport(f"{filename}: expected a list of members or a `players` list")
    return [_member(entry, f"{filename}: entry {i + 1}") for i, entry in enumerate(entries)]


def _parse_csv(text: str, filename: str) -> list[ImportedMember]:
    reader = csv.DictReader(io.StringIO(text))
    fields = {name.strip().lower() for name in reader.fieldnames or []}
    if not ({"user_id", "id"} & fields) or "xp" not in fields:
        raise InvalidImport(f"{filename}: the header must name user_id (or id) and xp")
    members = []
    for row in reader:
        entry = {key.strip().lower(): value for key, value in row.items() if key is not None}
        members.append(_member(entry, f"{filename}: line {reader.line_num}"))
    return members


def _member(entry: Any, where: str) -> ImportedMember:
    if not isinstance(entry, dict):
        raise InvalidImport(f"{where}: expected an object")
    user_id = entry.get("user_id") or entry.get("id")
    if user_id is None or isinstance(user_id, bool | float):
        raise InvalidImport(f"{where}: user_id (or id) is required")
    return ImportedMember(
        user_id=str(user_id).strip(),
        xp=_count(entry.get("xp"), f"{where}: xp"),
        message_count=_count(entry.get("message_count") or 0, f"{where}: message_count"),
    )


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise InvalidImport(f"{where} must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise InvalidImport(f"{where} must be a whole number")


async def _import_batch(
    ctx: TaskContext, community_id: str, source: str, members: Sequence[ImportedMember]
) -> ImportReport:
    importer = MemberImporter(ctx.service)
    async with ctx.service.transaction() as session:
        return await importer.import_members(session, community_id, source, members)


def _print_report(what: str, community_id: str, report: ImportReport) -> None:
    log.info(
        "import finished",
        what=what,
        community_id=community_id,
        received=report.received,
        credited=report.credited,
        xp_added=report.xp_added,
    )
    print(
        f"{what}: {report.received} members read, {report.credited} credited "
        f"(+{report.xp_added} XP) in community {community_id}"
    )


def import_mee6_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--community", required=True, help="community id to import into")
    parser.add_argument("--guild", required=True, help="Discord guild id of the MEE6 leaderboard")


async def import_mee6(ctx: TaskContext, args: argparse.Namespace) -> int:
    """Imports every page of a guild's MEE6 leaderboard; each page commits on its own, so a
    failed run imports the rest when run again (nothing is counted twice)."""
    if not valid_guild_id(args.guild):
        print(f"--guild {args.guild!r} is not a Discord guild id", file=sys.stderr)
        return 2
    report = ImportReport()
    with progress(f"MEE6 guild {args.guild}: members imported") as advance:
        async with ctx.mee6_client() as client:
            async for players in client.pages(args.guild):
                members = [ImportedMember(p.id, p.xp, p.message_count) for p in players]
                report.add(await _import_batch(ctx, args.community, "mee6", members))
                advance(len(members))
    _print_report(f"MEE6 guild {args.guild}", args.community, report)
    return 0


def import_file_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--community", required=True, help="community id to import into")
    parser.add_argument(
        "--source",
        choices=IMPORT_SOURCES,
        default="mee6",
        help="where the numbers come from (default mee6); re-imports compare per source",
    )
    parser.add_argument("path", type=Path, help="a JSON or CSV export")


async def import_file(ctx: TaskContext, args: argparse.Namespace) -> int:
    """Imports a JSON or CSV export; a file with any invalid row imports nothing."""
    try:
        data = args.path.read_bytes()
    except OSError as error:
        print(f"cannot read {args.path}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        members = parse_export(data, args.path.name)
    except InvalidImport as error:
        print(f"invalid export: {error.message}", file=sys.stderr)
        return 2
    report = ImportReport()
    with progress(f"{args.path.name}: members imported", len(members)) as advance:
        for batch in batches(members):
            report.add(await _import_batch(ctx, args.community, args.source, batch))
            advance(len(batch))
    _print_report(str(args.path), args.community, report)
    return 0
