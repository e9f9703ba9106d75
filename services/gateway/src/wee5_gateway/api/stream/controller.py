"""`GET /api/v1/communities/{community_id}/stream`: a community's XP and reward events as
Server-Sent Events, so rank cards and leaderboards update live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, cast

from litestar import Controller, Litestar, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from wee5_gateway.api.stream.cursor import parse_last_event_id
from wee5_gateway.api.stream.events import STREAMED_EVENTS
from wee5_gateway.api.stream.feed import Listener, LiveFeed, StartPoint
from wee5_gateway.api.stream.mappers import sse_message
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Action, requires
from wee5_gateway.core.deps import COMMUNITY, AccessDep, SettingsDep
from wee5_gateway.core.problems import problem_responses
from wee5_kit.events import EventBus
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.stream")

EVENT_STREAM = "text/event-stream"
# Sent first instead of a replay when a Last-Event-ID is too old to resume from.
RESET_EVENT = "reset"
# Any one of them; browsers' EventSource can only send the cookie.
CREDENTIALS: list[dict[str, list[str]]] = [
    {"CookieAuth": []},
    {"BearerAuth": []},
    {"ApiKeyAuth": []},
]

_DESCRIPTION = f"""\
Server-Sent Events of this community, for `EventSource`; browsers authenticate with the
`wee5_access` cookie (access tokens never go in the URL), other clients with a bearer token or
an API key with scope `xp:read`.

- `event:` the event's name: {", ".join(f"`{name}`" for name in STREAMED_EVENTS)}.
- `data:` the event as JSON, with `meta` (`event_id`, `occurred_at`, `community_id`).
- `id:` a cursor (`xp:123,rewards:45`). On reconnecting, `EventSource` sends it back as
  `Last-Event-ID` and the stream resumes right after it, with nothing missed or repeated
  (only this community's events are replayed). Without it the stream starts with new events.
- `event: reset` (data `{{"reason": …}}`) first, instead of a replay, when the Last-Event-ID
  is too far back (more events than the gateway replays, or removed by the streams'
  retention): reload what you show; the stream goes on with new events.
- At most a few open streams per caller (`429` beyond), as many as a browser has tabs.
- `: ping` comments when idle (they may carry a newer `id:`); `retry:` once at the start.
"""


def live_feed_lifespan(
    settings: GatewaySettings,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app lifespan part that runs the live feed on the `resources` lifespan's bus."""

    @asynccontextmanager
    async def live_feed(app: Litestar) -> AsyncIterator[None]:
        feed = LiveFeed(
            cast(EventBus, app.state.bus),
            max_listeners=settings.stream_max_connections,
            missing_stream_retry_seconds=settings.stream_missing_retry_seconds,
            max_per_principal=settings.stream_max_per_principal,
            resume_max_events=settings.stream_resume_max_events,
            idle_seconds=settings.stream_idle_seconds,
        )
        app.state.live_feed = feed
        try:
            yield
        finally:
            await feed.close()

    return live_feed


def end_live_streams(app: object) -> None:
    """Ends the open streams and refuses new ones. The server calls it when it starts to
    drain: streams never finish by themselves and would hold it for the whole grace period.
    Clients reconnect (to another replica) and resume from their cursor."""
    feed = getattr(getattr(app, "state", None), "live_feed", None)
    if isinstance(feed, LiveFeed):
        feed.drain()


def _provide_live_feed(state: State) -> LiveFeed:
    return cast(LiveFeed, state.live_feed)


class StreamController(Controller):
    path = COMMUNITY
    tags = ["live stream"]
    dependencies = {"live_feed": Provide(_provide_live_feed, sync_to_thread=False)}

    @get(
        "/stream",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="streamCommunityEvents",
        summary="Live XP, level-up and reward events of a community (Server-Sent Events)",
        description=_DESCRIPTION,
        media_type=EVENT_STREAM,
        security=CREDENTIALS,
        responses={
            200: ResponseSpec(
                str,
                description="An endless `text/event-stream`",
                media_type=EVENT_STREAM,
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 429, 503),
        },
    )
    async def stream(
        self,
        community_id: FromPath[str],
        settings: SettingsDep,
        access: AccessDep,
        live_feed: NamedDependency[LiveFeed],
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="last-event-id",
                description="The `id:` of the last event received: resume right after it",
            ),
        ] = None,
    ) -> ServerSentEvent:
        requested = parse_last_event_id(last_event_id) if last_event_id else None
        listener = await live_feed.open(community_id, access.principal.actor_id)
        try:
            start = await live_feed.start_cursor(listener, requested)
        except BaseException:
            live_feed.release(listener)
            raise
        events = _live_events(live_feed, listener, start, settings)
        # The generator releases the listener when it ends; this covers a response that fails
        # before the generator ever starts.
        weakref.finalize(events, live_feed.release, listener)
        return ServerSentEvent(events)


async def _live_events(
    feed: LiveFeed, listener: Listener, start: StartPoint, settings: GatewaySettings
) -> AsyncGenerator[ServerSentEventMessage, None]:
    cursor = start.cursor
    try:
        # The cursor from the start: a client that drops before its first event resumes here.
        if start.reset is not None:
            yield ServerSentEventMessage(
                data=json.dumps({"reason": start.reset}),
                event=RESET_EVENT,
                id=str(cursor),
                retry=settings.stream_retry_ms,
            )
        else:
            yield ServerSentEventMessage(data=None, id=str(cursor), retry=settings.stream_retry_ms)
        async with contextlib.aclosing(feed.replay(listener, cursor)) as missed:
            async for missed_event in missed:
                cursor.advance(missed_event.context, missed_event.sequence)
                yield sse_message(missed_event, cursor)
        while True:
            try:
                async with asyncio.timeout(settings.stream_heartbeat_seconds):
                    event = await listener.next_event()
            except TimeoutError:
                # Nothing waits for this client, so it has seen everything the tails have
                # passed: its cursor moves on, and a quiet community's clients resume from
                # near the streams' end instead of replaying other communities' events.
                moved = listener.idle and cursor.advance_all(feed.positions)
                yield ServerSentEventMessage(
                    data=None, comment="ping", id=str(cursor) if moved else None
                )
                continue
            if event is None:
                log.info(
                    "live stream ended",
                    community_id=listener.community_id,
                    reason=listener.ended,
                )
                return
            if cursor.advance(event.context, event.sequence):
                yield sse_message(event, cursor)
    finally:
        feed.release(listener)
