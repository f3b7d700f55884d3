"""A fake Discord on loopback: REST API + gateway websocket, for the real, unpatched discord.py.

The bot under test connects to it exactly as to Discord (after `apply_endpoints` points the two
discord.py constants here). Tests build a small world (one guild, channels, members with or without
Manage Channels), inject gateway events the way Discord would send them (a member's message, a
reaction, a slash command, a button click) and inspect what the bot did over REST: messages posted
and edited (with timestamps), threads, webhooks, typing, interaction responses and files.

Faithful where discord.py cares: JSON bodies with `Content-Type: application/json` and no charset;
MESSAGE_CREATE echoed for every message, the bot's own included; THREAD_CREATE after a thread is
made; 400/50035 for content over 2000 characters; 404/10008 for a deleted message; 429 bodies with
`retry_after` and a `Via` header (without it discord.py takes a 429 for a Cloudflare ban and raises).

Curation and other reviews: `create_role`/`give_role` (members with roles; interaction payloads carry
the resolved permissions), `unreact` (MESSAGE_REACTION_REMOVE), MODAL responses (callback type 9,
kept in `InteractionRecord.modal`) and `submit_modal` (a MODAL_SUBMIT interaction, type 5).

Faults: `rate_limit_next_patch(retry_after)` answers the next message edit with a 429;
`delete_message` removes a message so that later edits get 404; `fail(kind, status, ...)` answers
requests of one kind (history, send, edit, fetch, typing, webhook) with an error or a hang;
`deny_bot(channel, permission)` takes a permission from the bot in a channel, as a server admin
would (403s like Discord's: 50001 Missing Access, 50013 Missing Permissions); `delete_webhook`.

Limits: `enforce_limits(global_per_s=50, channel_messages=(5, 5.0))` makes it answer like Discord
under load: at most `global_per_s` REST requests in any one second, and per channel at most 5
message posts (and, separately, 5 edits) per 5 s, with `X-RateLimit-*` headers on those routes and
429s (`retry_after` JSON, `Via`, `X-RateLimit-Scope`/`-Global`) beyond them. `request_times` holds
every REST request's arrival time, `rate_limited` every 429 it sent.

Attachments: `attachment(filename, data)` uploads a file a member will attach to a slash command
(pass it as the option's value); the interaction carries it in `data.resolved.attachments` and its
`url` is served by this fake, so discord.py's `Attachment.read()` downloads it. Webhooks created
with an avatar keep the uploaded image in `webhook_avatars[webhook_id]`.
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import web

DISCORD_EPOCH_MS = 1420070400000
API = "/api/v10"

# Permission bits (https://discord.com/developers/docs/topics/permissions).
P = {
    "administrator": 1 << 3, "manage_channels": 1 << 4, "manage_guild": 1 << 5, "add_reactions": 1 << 6,
    "view_channel": 1 << 10, "send_messages": 1 << 11, "embed_links": 1 << 14, "attach_files": 1 << 15,
    "read_message_history": 1 << 16, "manage_webhooks": 1 << 29, "use_application_commands": 1 << 31,
    "create_public_threads": 1 << 35, "send_messages_in_threads": 1 << 38,
}
MEMBER_PERMS = sum(P[k] for k in ("add_reactions", "view_channel", "send_messages", "embed_links", "attach_files",
                                  "read_message_history", "use_application_commands", "create_public_threads",
                                  "send_messages_in_threads"))
ADMIN_PERMS = MEMBER_PERMS | P["manage_channels"] | P["manage_guild"] | P["manage_webhooks"]
_MENTION = re.compile(r"<@!?(\d+)>")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _json(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    # discord.py checks the content type exactly: no "; charset=utf-8".
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status)


@dataclass
class Sent:
    """One REST write by the bot, for assertions."""

    kind: str                 # "create" | "edit" | "typing" | "429"
    channel_id: int
    message_id: int | None
    content: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    """Requests of one kind answered with an error (or left hanging) instead of served."""

    kind: str                   # history | send | edit | fetch | typing | webhook
    status: int = 500
    code: int = 0
    channel_id: int | None = None
    times: int | None = 1       # None: every time
    hang_s: float = 0.0         # wait this long before answering (a timeout, for the client)


@dataclass
class InteractionRecord:
    id: int
    token: str
    channel_id: int
    user_id: int
    responses: list[dict] = field(default_factory=list)    # callback bodies, in order
    followups: list[dict] = field(default_factory=list)    # followup message payloads
    files: list[tuple[str, bytes]] = field(default_factory=list)
    message: dict | None = None                            # the response message (current state)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    modal: dict | None = None                              # a MODAL response's data (custom_id, title, components)

    @property
    def text(self) -> str:
        """Everything the bot answered, joined: the response message and the followups."""
        parts = [self.message.get("content") or ""] if self.message else []
        parts += [f.get("content") or "" for f in self.followups]
        return "\n".join(p for p in parts if p)

    def custom_ids(self) -> list[str]:
        rows = (self.message or {}).get("components") or []
        return [c["custom_id"] for row in rows for c in row.get("components", []) if "custom_id" in c]


@dataclass(frozen=True)
class Upload:
    """A file uploaded by `FakeDiscord.attachment`, to pass as a slash command's attachment option."""

    id: int
    filename: str
    size: int
    content_type: str


class FakeDiscord:
    def __init__(self) -> None:
        self._last_id = 0
        self.app_id = self.new_id()
        self.guild_id = self.new_id()
        self.owner_id = self.new_id()   # nobody in the tests: the owner bypasses every permission
        self.bot_user = {"id": str(self.app_id), "username": "personabot", "discriminator": "0", "global_name": None,
                         "avatar": None, "bot": True}
        self.everyone_role = {"id": str(self.guild_id), "name": "@everyone", "permissions": str(MEMBER_PERMS), "position": 0,
                              "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
        self.bot_role = self._role("personabot", MEMBER_PERMS, managed=True)
        self.admin_role = self._role("admins", ADMIN_PERMS)
        self.roles = [self.everyone_role, self.bot_role, self.admin_role]
        self.users: dict[int, dict] = {self.app_id: self.bot_user}
        self.members: dict[int, dict] = {}
        self.channels: dict[int, dict] = {}
        self.messages: dict[int, dict[int, dict]] = {}     # channel → message id → payload (insertion order)
        self.deleted: set[int] = set()
        self.webhooks: dict[int, dict] = {}
        self.commands: dict[str, dict] = {}                 # name → registered command (guild or global)
        self.interactions: dict[str, InteractionRecord] = {}
        self.sent: list[Sent] = []
        self.on_sent: list[Callable[[Sent], None]] = []    # observers of the bot's writes (the benchmark)
        self.requests: list[tuple[str, str]] = []
        self._patch_429: list[float] = []
        self.faults: list[Fault] = []
        self.denied: dict[int, set[str]] = {}             # channel -> permissions taken from the bot
        self.limits: tuple[int, int, float] | None = None  # (global per second, messages, per seconds)
        self.request_times: list[float] = []
        self.rate_limited: list[tuple[float, str]] = []    # (when, scope) of every 429 sent by the limits
        self._global_window: deque[float] = deque()
        self._buckets: dict[str, deque[float]] = {}
        self._ws: list[web.WebSocketResponse] = []
        self._seq = 0
        self._changed = asyncio.Event()
        self.identified = asyncio.Event()
        self._add_member_payload(self.bot_user, [self.bot_role["id"]])
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.uploads: dict[int, tuple[str, bytes, str]] = {}   # attachment id → (filename, bytes, content type)
        self.webhook_avatars: dict[int, bytes] = {}

    # -- world ----------------------------------------------------------------------------------

    def new_id(self) -> int:
        stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(stamp, self._last_id + 1)
        return self._last_id

    def _role(self, name: str, perms: int, managed: bool = False) -> dict:
        return {"id": str(self.new_id()), "name": name, "permissions": str(perms), "position": 1, "color": 0,
                "hoist": False, "managed": managed, "mentionable": False, "flags": 0}

    def _add_member_payload(self, user: dict, roles: list[str]) -> dict:
        member = {"user": user, "roles": roles, "joined_at": _now_iso(), "deaf": False, "mute": False, "flags": 0,
                  "nick": None, "avatar": None, "pending": False}
        self.members[int(user["id"])] = member
        return member

    def add_member(self, name: str, *, admin: bool = False, bot: bool = False) -> int:
        """A guild member; `admin` gives Manage Channels, Manage Server and Manage Webhooks."""
        uid = self.new_id()
        user = {"id": str(uid), "username": name, "discriminator": "0", "global_name": name, "avatar": None, "bot": bot}
        self.users[uid] = user
        self._add_member_payload(user, [self.admin_role["id"]] if admin else [])
        return uid

    async def create_role(self, name: str, perms: int = 0) -> str:
        """A new guild role (no permissions by default), announced with GUILD_ROLE_CREATE. Returns its id."""
        role = self._role(name, perms)
        self.roles.append(role)
        await self.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": role})
        return role["id"]

    def give_role(self, user_id: int, role_id: str) -> None:
        self.members[user_id]["roles"].append(role_id)

    def add_channel(self, name: str, *, bot_can_manage_webhooks: bool = False) -> int:
        cid = self.new_id()
        overwrites = []
        if bot_can_manage_webhooks:
            overwrites.append({"id": self.bot_role["id"], "type": 0, "allow": str(P["manage_webhooks"]), "deny": "0"})
        self.channels[cid] = {"id": str(cid), "type": 0, "guild_id": str(self.guild_id), "name": name, "position": len(self.channels),
                              "permission_overwrites": overwrites, "topic": None, "nsfw": False, "last_message_id": None,
                              "rate_limit_per_user": 0, "parent_id": None, "flags": 0}
        self.messages[cid] = {}
        return cid

    def add_dm(self, user_id: int) -> int:
        cid = self.new_id()
        self.channels[cid] = {"id": str(cid), "type": 1, "recipients": [self.users[user_id]], "last_message_id": None}
        self.messages[cid] = {}
        return cid

    def permissions(self, user_id: int) -> int:
        member = self.members[user_id]
        perms = int(self.everyone_role["permissions"])
        for role in self.roles:
            if role["id"] in member["roles"]:
                perms |= int(role["permissions"])
        return perms

    # -- server ---------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{aid}/{filename}", self._download)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for ws in list(self._ws):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- gateway --------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._ws.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        try:
            async for msg in ws:
                data = json.loads(msg.data)
                if data["op"] == 1:
                    await ws.send_str(json.dumps({"op": 11, "d": None}))
                elif data["op"] == 2:
                    await self._send(ws, "READY", {
                        "v": 10, "user": self.bot_user, "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                        "session_id": secrets.token_hex(8), "resume_gateway_url": self.gateway_url,
                        "application": {"id": str(self.app_id), "flags": 0}, "private_channels": [], "relationships": [],
                        "shard": [0, 1],
                    })
                    await self._send(ws, "GUILD_CREATE", self._guild_payload())
                    self.identified.set()
        finally:
            self._ws.remove(ws)
        return ws

    def _guild_payload(self) -> dict:
        guild_channels = [c for c in self.channels.values() if c["type"] == 0]
        threads = [c for c in self.channels.values() if c["type"] == 11]
        return {
            "id": str(self.guild_id), "name": "Fake Guild", "icon": None, "owner_id": str(self.owner_id), "roles": self.roles,
            "emojis": [], "stickers": [], "features": [], "channels": guild_channels, "threads": threads,
            "members": list(self.members.values()), "member_count": len(self.members), "large": False,
            "unavailable": False, "joined_at": _now_iso(), "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "premium_tier": 0, "preferred_locale": "en-US", "system_channel_id": None,
            "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "nsfw_level": 0, "description": None, "vanity_url_code": None, "banner": None,
        }

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def dispatch(self, event: str, data: dict) -> None:
        for ws in list(self._ws):
            await self._send(ws, event, data)

    # -- messages -------------------------------------------------------------------------------

    def _mentions(self, content: str) -> list[dict]:
        ids = dict.fromkeys(int(m) for m in _MENTION.findall(content))
        return [self.users[i] for i in ids if i in self.users]

    def _message(self, channel_id: int, author: dict, content: str, *, reference: int | None = None,
                 webhook_id: int | None = None, type_: int = 0, flags: int = 0, extra: dict | None = None) -> dict:
        channel = self.channels[channel_id]
        mid = self.new_id()
        msg = {"id": str(mid), "channel_id": str(channel_id), "author": author, "content": content,
               "timestamp": _now_iso(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
               "mentions": self._mentions(content), "mention_roles": [], "attachments": [], "embeds": [],
               "pinned": False, "type": type_, "flags": flags, "components": []}
        if channel["type"] != 1:
            msg["guild_id"] = str(self.guild_id)
            if webhook_id is None and int(author["id"]) in self.members:
                member = dict(self.members[int(author["id"])])
                member.pop("user", None)
                msg["member"] = member
        if webhook_id is not None:
            msg["webhook_id"] = str(webhook_id)
            msg["application_id"] = str(self.app_id)
        if reference is not None and reference in self.messages[channel_id]:
            msg["type"] = 19 if type_ == 0 else type_
            msg["message_reference"] = {"type": 0, "message_id": str(reference), "channel_id": str(channel_id),
                                        **({"guild_id": str(self.guild_id)} if channel["type"] != 1 else {})}
            referenced = dict(self.messages[channel_id][reference])
            referenced.pop("referenced_message", None)      # Discord nests one level only
            msg["referenced_message"] = referenced
        msg.update(extra or {})
        return msg

    async def _post(self, msg: dict, *, ephemeral: bool = False) -> dict:
        channel_id, mid = int(msg["channel_id"]), int(msg["id"])
        if not ephemeral:
            self.messages[channel_id][mid] = msg
            self.channels[channel_id]["last_message_id"] = str(mid)
        if int(msg["author"]["id"]) == self.app_id or msg.get("webhook_id"):
            self._record(Sent("create", channel_id, mid, msg["content"]))
        self._touch()
        if not ephemeral:
            await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    async def member_message(self, channel_id: int, author_id: int, content: str, *, reply_to: int | None = None,
                             mention_bot: bool = False) -> dict:
        """A member writes in a channel, thread or DM (`mention_bot` prefixes the bot's mention)."""
        if mention_bot:
            content = f"<@{self.app_id}> {content}"
        msg = self._message(channel_id, self.users[author_id], content, reference=reply_to)
        return await self._post(msg)

    def delete_message(self, channel_id: int, message_id: int) -> None:
        self.messages[channel_id].pop(message_id, None)
        self.deleted.add(message_id)

    async def react(self, channel_id: int, message_id: int, user_id: int, emoji: str) -> None:
        data = {"user_id": str(user_id), "channel_id": str(channel_id), "message_id": str(message_id),
                "emoji": {"id": None, "name": emoji}, "type": 0, "burst": False, "burst_colors": []}
        if self.channels[channel_id]["type"] != 1:
            data["guild_id"] = str(self.guild_id)
            data["member"] = self.members[user_id]
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    async def unreact(self, channel_id: int, message_id: int, user_id: int, emoji: str) -> None:
        """The member removes their reaction (MESSAGE_REACTION_REMOVE carries no member object)."""
        data = {"user_id": str(user_id), "channel_id": str(channel_id), "message_id": str(message_id),
                "emoji": {"id": None, "name": emoji}, "type": 0, "burst": False}
        if self.channels[channel_id]["type"] != 1:
            data["guild_id"] = str(self.guild_id)
        await self.dispatch("MESSAGE_REACTION_REMOVE", data)

    def rate_limit_next_patch(self, retry_after: float) -> None:
        self._patch_429.append(retry_after)

    # -- interactions ---------------------------------------------------------------------------

    def _interaction_base(self, channel_id: int, user_id: int, type_: int) -> tuple[dict, InteractionRecord]:
        iid, token = self.new_id(), secrets.token_urlsafe(24)
        channel = self.channels[channel_id]
        data: dict = {"id": str(iid), "application_id": str(self.app_id), "type": type_, "token": token, "version": 1,
                      "channel_id": str(channel_id), "channel": channel, "locale": "en-US",
                      "attachment_size_limit": 8 * 1024 * 1024, "entitlements": [], "app_permissions": str(ADMIN_PERMS)}
        if channel["type"] == 1:
            data.update(user=self.users[user_id], context=1, authorizing_integration_owners={"1": str(user_id)})
        else:
            member = dict(self.members[user_id], permissions=str(self.permissions(user_id)))
            data.update(guild_id=str(self.guild_id), member=member, guild_locale="en-US", context=0,
                        guild={"id": str(self.guild_id), "locale": "en-US", "features": []},
                        authorizing_integration_owners={"0": str(self.guild_id)})
        record = InteractionRecord(iid, token, channel_id, user_id)
        self.interactions[token] = record
        return data, record

    async def slash(self, channel_id: int, user_id: int, command: str, sub: str | None = None, **options: Any) -> InteractionRecord:
        """A member runs `/command [sub] option=value...`; returns the record of the bot's responses."""
        registered = self.commands.get(command)
        if registered is None:
            raise AssertionError(f"/{command} was never registered (known: {sorted(self.commands)})")
        spec_options = registered.get("options", [])
        if sub is not None:
            sub_spec = next(o for o in spec_options if o["name"] == sub)
            spec_options = sub_spec.get("options", [])
        types = {o["name"]: o["type"] for o in spec_options}
        unknown = set(options) - set(types)
        if unknown:
            raise AssertionError(f"/{command} {sub or ''} has no option(s) {unknown}")
        attached = {k: v for k, v in options.items() if isinstance(v, Upload)}
        opts = [{"name": k, "type": types[k], "value": (str(v.id) if isinstance(v, Upload) else v)}
                for k, v in options.items() if v is not None]
        if sub is not None:
            opts = [{"name": sub, "type": 1, "options": opts}]
        data, record = self._interaction_base(channel_id, user_id, 2)
        data["data"] = {"id": registered["id"], "name": command, "type": 1, "options": opts}
        if attached:
            data["data"]["resolved"] = {"attachments": {str(u.id): self._attachment_payload(u) for u in attached.values()}}
        if "guild_id" in data:
            data["data"]["guild_id"] = registered.get("guild_id") or str(self.guild_id)
        await self.dispatch("INTERACTION_CREATE", data)
        return record

    def attachment(self, filename: str, data: bytes, content_type: str = "application/octet-stream") -> "Upload":
        """A file a member attaches to a slash command option (type 11)."""
        upload = Upload(self.new_id(), filename, len(data), content_type)
        self.uploads[upload.id] = (filename, data, content_type)
        return upload

    def _attachment_payload(self, upload: "Upload") -> dict:
        url = f"http://127.0.0.1:{self.port}/attachments/{upload.id}/{upload.filename}"
        return {"id": str(upload.id), "filename": upload.filename, "size": upload.size, "url": url, "proxy_url": url,
                "content_type": upload.content_type, "ephemeral": True}

    async def _download(self, request: web.Request) -> web.Response:
        found = self.uploads.get(int(request.match_info["aid"]))
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[1], headers={"Content-Type": found[2]})

    async def click(self, record: InteractionRecord, user_id: int, custom_id: str) -> InteractionRecord:
        """A member presses a button on the message the bot sent in answer to `record`."""
        if record.message is None:
            raise AssertionError("that interaction has no response message with buttons")
        data, click = self._interaction_base(record.channel_id, user_id, 3)
        data["message"] = record.message
        data["data"] = {"custom_id": custom_id, "component_type": 2}
        click.message = record.message   # an UPDATE_MESSAGE response edits this message
        await self.dispatch("INTERACTION_CREATE", data)
        return click

    async def submit_modal(self, record: InteractionRecord, user_id: int, values: dict[str, str]) -> InteractionRecord:
        """The member submits the modal the bot opened in answer to `record` (a button click), with
        `values` by text input custom_id. An UPDATE_MESSAGE response edits the clicked message."""
        if record.modal is None:
            raise AssertionError("that interaction was not answered with a modal")
        data, submit = self._interaction_base(record.channel_id, user_id, 5)
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": cid, "value": value}]} for cid, value in values.items()]
        data["data"] = {"custom_id": record.modal["custom_id"], "components": rows}
        if record.message is not None:
            data["message"] = record.message
            submit.message = record.message
        await self.dispatch("INTERACTION_CREATE", data)
        return submit

    # -- inspection -----------------------------------------------------------------------------

    def _record(self, sent: Sent) -> None:
        self.sent.append(sent)
        for observer in self.on_sent:
            observer(sent)

    def _touch(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
        """Wait until `predicate()` is truthy (re-checked whenever the bot writes something)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.05))
            except asyncio.TimeoutError:
                pass

    def channel_messages(self, channel_id: int) -> list[dict]:
        return list(self.messages[channel_id].values())

    def bot_messages(self, channel_id: int) -> list[dict]:
        """Messages in the channel posted by the bot account or one of its webhooks."""
        return [m for m in self.messages[channel_id].values()
                if int(m["author"]["id"]) == self.app_id or m.get("webhook_id")]

    def edits_of(self, message_id: int) -> list[Sent]:
        return [s for s in self.sent if s.kind == "edit" and s.message_id == message_id]

    def typing_in(self, channel_id: int) -> list[Sent]:
        return [s for s in self.sent if s.kind == "typing" and s.channel_id == channel_id]

    def threads(self) -> list[dict]:
        return [c for c in self.channels.values() if c["type"] == 11]

    # -- REST -----------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> tuple[dict, list[tuple[str, bytes]]]:
        if request.content_type.startswith("multipart/"):
            payload, files = {}, []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    files.append((part.filename or part.name, await part.read()))
            return payload, files
        raw = await request.read()
        return (json.loads(raw) if raw else {}), []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        method = request.method
        self.requests.append((method, path))
        parts = path.split("/")
        body, files = await self._body(request)
        refused, limit_headers = await self._intercept(method, parts)
        if refused is not None:
            return refused
        try:
            response = await self._route(method, parts, body, files, request)
        except KeyError as exc:
            return _error(404, 10003, f"Unknown object {exc}")
        response.headers.update(limit_headers)
        return response

    async def _route(self, method: str, p: list[str], body: dict, files: list, request: web.Request) -> web.StreamResponse:
        if p == ["users", "@me"]:
            return _json(self.bot_user)
        if p == ["oauth2", "applications", "@me"]:
            return _json({"id": str(self.app_id), "name": "personabot", "description": "", "icon": None, "bot_public": True,
                          "bot_require_code_grant": False, "owner": self.bot_user, "verify_key": "0" * 64, "flags": 0,
                          "team": None, "summary": "", "rpc_origins": []})
        if p[0] == "applications" and p[-1] == "commands" and method == "PUT":
            guild_id = p[3] if len(p) == 5 else None
            out = []
            for cmd in body:
                cmd = dict(cmd, id=str(self.new_id()), application_id=str(self.app_id), version="1",
                           default_member_permissions=cmd.get("default_member_permissions"))
                if guild_id:
                    cmd["guild_id"] = guild_id
                self.commands[cmd["name"]] = cmd
                out.append(cmd)
            return _json(out)
        if p[0] == "channels":
            return await self._channels(method, p, body, files, request)
        if p[0] == "webhooks":
            return await self._webhook_route(method, p, body, files, request)
        if p[0] == "interactions" and p[-1] == "callback":
            return await self._callback(p[2], body, files)
        return _error(404, 0, f"fake Discord has no route {method} {'/'.join(p)}")

    async def _channels(self, method: str, p: list[str], body: dict, files: list, request: web.Request) -> web.StreamResponse:
        cid = int(p[1])
        if cid not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        rest = p[2:]
        if rest == ["typing"] and method == "POST":
            self._record(Sent("typing", cid, None, None))
            self._touch()
            return web.Response(status=204)
        if rest == ["messages"] and method == "POST":
            content = body.get("content") or ""
            if len(content) > 2000:
                return _json({"code": 50035, "message": "Invalid Form Body",
                              "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                                                  "message": "Must be 2000 or fewer in length."}]}}}, 400)
            ref = body.get("message_reference") or {}
            ref_id = int(ref["message_id"]) if ref.get("message_id") else None
            msg = self._message(cid, self.bot_user, content, reference=ref_id)
            if body.get("components"):      # a message with buttons (a view sent with channel.send)
                msg["components"] = body["components"]
            if files:
                msg["attachments"] = [{"id": str(self.new_id()), "filename": n, "size": len(b), "url": "http://x/" + n,
                                       "proxy_url": "http://x/" + n} for n, b in files]
            return _json(await self._post(msg))
        if rest == ["messages"] and method == "GET":
            return _json(self._history(cid, request.query))
        if len(rest) == 2 and rest[0] == "messages":
            mid = int(rest[1])
            if method == "GET":
                msg = self.messages[cid].get(mid)
                return _json(msg) if msg else _error(404, 10008, "Unknown Message")
            if method == "PATCH":
                return await self._edit(cid, mid, body)
            if method == "DELETE":
                self.delete_message(cid, mid)
                return web.Response(status=204)
        if rest == ["threads"] and method == "POST":
            if self.channels[cid].get("type") in (10, 11, 12):   # as Discord: a thread holds no threads
                return _error(400, 50024, "Cannot execute action on this channel type")
            return _json(await self._create_thread(cid, body))
        if rest == ["webhooks"]:
            if method == "GET":
                return _json([w for w in self.webhooks.values() if w["channel_id"] == str(cid)])
            hook = {"id": str(self.new_id()), "type": 1, "guild_id": str(self.guild_id), "channel_id": str(cid),
                    "name": body.get("name"), "avatar": None, "token": secrets.token_urlsafe(32),
                    "application_id": str(self.app_id), "user": self.bot_user}
            if body.get("avatar"):     # a data URI: data:image/png;base64,...
                import base64
                import hashlib

                image = base64.b64decode(body["avatar"].split(",", 1)[1])
                self.webhook_avatars[int(hook["id"])] = image
                hook["avatar"] = hashlib.md5(image).hexdigest()
            self.webhooks[int(hook["id"])] = hook
            return _json(hook)
        return _error(404, 0, f"fake Discord has no route {method} channels/{'/'.join(p[1:])}")

    def _history(self, cid: int, query) -> list[dict]:
        """Newest first, like Discord (ids grow with time, so insertion order is id order)."""
        limit = int(query.get("limit", 50))
        before = int(query["before"]) if "before" in query else None
        after = int(query["after"]) if "after" in query else None
        if after is not None:
            msgs = [m for m in self.messages[cid].values() if int(m["id"]) > after and (before is None or int(m["id"]) < before)]
            return list(reversed(msgs[:limit]))
        out = []
        for m in reversed(self.messages[cid].values()):
            if before is not None and int(m["id"]) >= before:
                continue
            out.append(m)
            if len(out) == limit:
                break
        return out

    async def _edit(self, cid: int, mid: int, body: dict, *, webhook: bool = False) -> web.Response:
        if self._patch_429:
            retry_after = self._patch_429.pop(0)
            self._record(Sent("429", cid, mid, None))
            self._touch()
            return _json({"message": "You are being rate limited.", "retry_after": retry_after, "global": False}, 429,
                         {"Via": "1.1 google", "X-RateLimit-Scope": "user"})
        msg = self.messages[cid].get(mid)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        content = body.get("content", msg["content"])
        if content is not None and len(content) > 2000:
            return _error(400, 50035, "Invalid Form Body: content must be 2000 or fewer in length")
        msg = dict(msg, content=content, edited_timestamp=_now_iso())
        if "components" in body:
            msg["components"] = body["components"]
        self.messages[cid][mid] = msg
        self._record(Sent("edit", cid, mid, content))
        self._touch()
        await self.dispatch("MESSAGE_UPDATE", msg)
        return _json(msg)

    async def _create_thread(self, parent_id: int, body: dict) -> dict:
        tid = self.new_id()
        thread = {"id": str(tid), "type": body.get("type", 11), "guild_id": str(self.guild_id), "parent_id": str(parent_id),
                  "owner_id": str(self.app_id), "name": body["name"], "last_message_id": None, "message_count": 0,
                  "member_count": 1, "rate_limit_per_user": 0, "flags": 0,
                  "thread_metadata": {"archived": False, "auto_archive_duration": body.get("auto_archive_duration", 1440),
                                      "archive_timestamp": _now_iso(), "locked": False}}
        self.channels[tid] = thread
        self.messages[tid] = {}
        self._touch()
        await self.dispatch("THREAD_CREATE", dict(thread, newly_created=True))
        return thread

    async def _webhook_route(self, method: str, p: list[str], body: dict, files: list, request: web.Request) -> web.StreamResponse:
        hook_id, token = int(p[1]), p[2]
        if hook_id == self.app_id:                      # interaction followups and the original response
            return await self._followup(method, token, p[3:], body, files)
        hook = self.webhooks.get(hook_id)
        if hook is None or hook["token"] != token:
            return _error(404, 10015, "Unknown Webhook")
        channel_id = int(request.query.get("thread_id") or hook["channel_id"])
        if len(p) == 3 and method == "POST":
            content = body.get("content") or ""
            if len(content) > 2000:
                return _error(400, 50035, "Invalid Form Body: content must be 2000 or fewer in length")
            author = {"id": str(hook_id), "username": body.get("username") or hook["name"], "discriminator": "0000",
                      "avatar": None if body.get("avatar_url") else hook.get("avatar"), "bot": True, "global_name": None}
            msg = self._message(channel_id, author, content, webhook_id=hook_id)
            await self._post(msg)
            return _json(msg) if request.query.get("wait") in ("true", "1", "True") else web.Response(status=204)
        if len(p) == 5 and p[3] == "messages" and method == "PATCH":
            return await self._edit(channel_id, int(p[4]), body, webhook=True)
        return _error(404, 0, "fake Discord: unsupported webhook route")

    async def _callback(self, token: str, body: dict, files: list) -> web.Response:
        record = self.interactions[token]
        record.responses.append(body)
        record.files += files
        kind = body["type"]
        data = body.get("data") or {}
        ephemeral = bool(data.get("flags", 0) & 64)
        if kind in (4, 5):
            flags = data.get("flags", 0) | (128 if kind == 5 else 0)
            msg = self._message(record.channel_id, self.bot_user, data.get("content") or "", type_=20, flags=flags,
                                extra={"interaction_metadata": {"id": str(record.id), "type": 2, "user": self.users[record.user_id],
                                                                "authorizing_integration_owners": {}},
                                       "components": data.get("components", [])})
            record.message = msg
            await self._post(msg, ephemeral=ephemeral or kind == 5)
        elif kind == 9:
            record.modal = data
        elif kind == 7 and record.message is not None:
            record.message = dict(record.message, **{k: v for k, v in data.items() if k in ("content", "components")})
            cid, mid = int(record.message["channel_id"]), int(record.message["id"])
            if mid in self.messages.get(cid, {}):
                self.messages[cid][mid] = record.message
        record.done.set()
        self._touch()
        return _json({"interaction": {"id": str(record.id), "type": 2, "response_message_id": (record.message or {}).get("id"),
                                      "response_message_loading": kind == 5, "response_message_ephemeral": ephemeral},
                      "resource": {"type": kind, **({"message": record.message} if record.message else {})}})

    async def _followup(self, method: str, token: str, rest: list[str], body: dict, files: list) -> web.Response:
        record = self.interactions[token]
        record.files += files
        if method == "POST" and not rest:
            msg = self._message(record.channel_id, self.bot_user, body.get("content") or "", flags=body.get("flags", 0),
                                extra={"components": body.get("components", [])})
            if files:
                msg["attachments"] = [{"id": str(self.new_id()), "filename": n, "size": len(b), "url": "http://x/" + n,
                                       "proxy_url": "http://x/" + n} for n, b in files]
            record.followups.append(msg)
            record.done.set()
            self._touch()
            return _json(msg)
        if method == "PATCH" and rest[:1] == ["messages"] and record.message is not None:
            record.message = dict(record.message, **{k: v for k, v in body.items() if k in ("content", "components")})
            self._touch()
            return _json(record.message)
        return _error(404, 10008, "Unknown Message")

    # -- faults and limits ----------------------------------------------------------------------

    async def _intercept(self, method: str, parts: list[str]) -> tuple[web.Response | None, dict]:
        """Faults, denied permissions and rate limits, before a request is served: (a refusal or
        None to serve it, the rate-limit headers for the response)."""
        now = time.monotonic()
        self.request_times.append(now)
        path = "/".join(parts)
        kind, major = _kind_of(method, path)
        channel_id = major
        if kind in ("webhook", "webhook_edit"):
            hook = self.webhooks.get(major)
            channel_id = int(hook["channel_id"]) if hook else None
        headers: dict = {}
        if self.limits is not None:
            limited, headers = self._limit(now, kind, channel_id)
            if limited is not None:
                return limited, {}
        for fault in list(self.faults):
            if fault.kind == kind and (fault.channel_id is None or fault.channel_id == channel_id):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                if fault.hang_s:
                    await asyncio.sleep(fault.hang_s)
                self._record(Sent(f"fault:{kind}", channel_id or 0, None, None))
                self._touch()
                return _error(fault.status, fault.code, f"injected {fault.status}"), {}
        for permission in self.denied.get(channel_id or 0, ()):
            denied_kind, code, message = _PERMISSION_ERRORS[permission]
            if kind == denied_kind or (permission == "read_message_history" and kind == "fetch"):
                self._record(Sent(f"403:{kind}", channel_id, None, None))
                self._touch()
                return _error(403, code, message), {}
        return None, headers

    def _limit(self, now: float, kind: str | None, channel_id: int | None):
        per_second, messages, per_s = self.limits
        window = self._global_window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= per_second:
            retry = round(window[0] + 1.0 - now, 3)
            return self._too_many(now, "global", retry, {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}), {}
        bucket_name = None
        if kind in ("send", "webhook") and channel_id is not None:
            bucket_name = f"create:{channel_id}"
        elif kind in ("edit", "webhook_edit") and channel_id is not None:
            bucket_name = f"edit:{channel_id}"
        headers = {}
        if bucket_name is not None:
            bucket = self._buckets.setdefault(bucket_name, deque())
            while bucket and bucket[0] <= now - per_s:
                bucket.popleft()
            if len(bucket) >= messages:
                retry = round(bucket[0] + per_s - now, 3)
                return self._too_many(now, "user", retry, {"X-RateLimit-Scope": "user", "X-RateLimit-Limit": str(messages),
                                                            "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(retry),
                                                            "X-RateLimit-Bucket": bucket_name}), {}
            bucket.append(now)
            reset_after = round(bucket[0] + per_s - now, 3)
            headers = {"X-RateLimit-Limit": str(messages), "X-RateLimit-Remaining": str(messages - len(bucket)),
                       "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}", "X-RateLimit-Reset-After": str(reset_after),
                       "X-RateLimit-Bucket": bucket_name}
        window.append(now)
        return None, headers

    def _too_many(self, now: float, scope: str, retry: float, headers: dict) -> web.Response:
        self.rate_limited.append((now, scope))
        self._record(Sent("429", 0, None, None))
        self._touch()
        return _json({"message": "You are being rate limited.", "retry_after": max(retry, 0.001), "global": scope == "global"},
                     429, {"Via": "1.1 google", "Retry-After": str(max(retry, 0.001)), **headers})

    def enforce_limits(self, global_per_s: int = 50, channel_messages: tuple[int, float] = (5, 5.0)) -> None:
        """Answer like Discord under load (see the module docstring)."""
        self.limits = (global_per_s, channel_messages[0], channel_messages[1])

    def fail(self, kind: str, status: int = 500, code: int = 0, *, channel_id: int | None = None,
             times: int | None = 1, hang_s: float = 0.0) -> Fault:
        """Answer the next `times` requests of `kind` (None: all) with `status`/`code`, after `hang_s`."""
        fault = Fault(kind, status, code, channel_id, times, hang_s)
        self.faults.append(fault)
        return fault

    async def deny_bot(self, channel_id: int, *permissions: str) -> None:
        """Take permissions from the bot in a channel (a deny overwrite on its role; REST then answers 403)."""
        bits = 0
        for name in permissions:
            if name not in _PERMISSION_ERRORS:
                raise ValueError(f"deny_bot supports {sorted(_PERMISSION_ERRORS)}, not {name!r}")
            bits |= P[name]
            self.denied.setdefault(channel_id, set()).add(name)
        overwrites = self.channels[channel_id].setdefault("permission_overwrites", [])
        mine = next((o for o in overwrites if o["id"] == self.bot_role["id"]), None)
        if mine is None:
            mine = {"id": self.bot_role["id"], "type": 0, "allow": "0", "deny": "0"}
            overwrites.append(mine)
        mine["deny"] = str(int(mine["deny"]) | bits)
        channel = self.channels[channel_id]
        if self._ws:
            await self.dispatch("CHANNEL_UPDATE", channel)

    def delete_webhook(self, hook_id: int | None = None) -> int:
        """Delete a webhook (the only one when not named), as a member with Manage Webhooks might."""
        if hook_id is None:
            (hook_id,) = self.webhooks
        del self.webhooks[hook_id]
        return hook_id

    def requests_per_second(self) -> list[int]:
        """REST requests received in each second since the first one."""
        if not self.request_times:
            return []
        start = self.request_times[0]
        counts = [0] * (int(self.request_times[-1] - start) + 1)
        for t in self.request_times:
            counts[int(t - start)] += 1
        return counts

    def peak_per_second(self) -> int:
        """Most REST requests in any sliding one-second window."""
        times, best, lo = self.request_times, 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


# -- faults and limits (additions) ---------------------------------------------------------------

_KINDS = [
    ("GET", re.compile(r"^channels/(\d+)/messages$"), "history"),
    ("POST", re.compile(r"^channels/(\d+)/messages$"), "send"),
    ("PATCH", re.compile(r"^channels/(\d+)/messages/\d+$"), "edit"),
    ("GET", re.compile(r"^channels/(\d+)/messages/\d+$"), "fetch"),
    ("POST", re.compile(r"^channels/(\d+)/typing$"), "typing"),
    ("POST", re.compile(r"^webhooks/(\d+)/[^/]+$"), "webhook"),
    ("PATCH", re.compile(r"^webhooks/(\d+)/[^/]+/messages/\d+$"), "webhook_edit"),
]
_PERMISSION_ERRORS = {"read_message_history": ("history", 50001, "Missing Access"),
                      "send_messages": ("send", 50013, "Missing Permissions")}


def _kind_of(method: str, path: str) -> tuple[str | None, int | None]:
    for want, pattern, kind in _KINDS:
        m = pattern.match(path)
        if m and want == method:
            return kind, int(m.group(1))
    return None, None
