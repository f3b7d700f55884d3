"""Discord end-to-end throughput: the real PersonaBot against the fake Discord, with an instant model.

What is measured: from the moment the fake gateway sends a member's MESSAGE_CREATE to the moment
the fake REST API receives the bot's reply (its final text), i.e. everything the bot adds on top of
the model: event parsing, routing, queueing, reading history back over REST, prompt assembly,
posting, and consent logging to SQLite (every member has opted in, so every exchange is written).
The backend answers instantly, so all of that latency is "added" latency.

Per level (concurrent conversations, one channel and one member each):
- saturation: every conversation talks in a closed loop (send, wait for the reply, send again);
  messages/s = messages answered / wall time;
- latency: messages arrive open-loop (Poisson) at --rate messages/s spread over the conversations;
  p50/p99 of the added latency. A message that arrives while its conversation's reply is being
  generated is folded into the next turn; its latency runs to the reply that covers it.
- lost: messages never covered by a reply (must be 0).

By default the bot runs in its own process (the way it is deployed), so the fake Discord and the
driver use the other core; `--same-process` runs all in one event loop. The bot's request budget
(DISCORD_REQUESTS_PER_SECOND) is set by `--requests-per-second`: the CPU-per-message levels above
lift it (default 100000) so that they measure the bot's own cost, not Discord's limit.

`--baseline` runs every level a second time against bare discord.py (a client that answers each
mention with `channel.send(reference=...)` and does nothing else), measured in the same run: the
floor of what receiving a message and posting a reply costs in discord.py on this machine, and the
bot's CPU per message as a ratio to it.

`--streaming N` measures the other side, Discord's limits: the fake Discord enforces 50 requests/s
globally and 5 messages (and 5 edits) per 5 s per channel, returning 429s like Discord's; the model
streams each reply for about 2 s (20 pieces); N conversations (one channel and member each) each
send one message at the same moment, and the bot may run N generations at once under its default
budget of 45 requests/s. Reported: requests/s at the fake (peak over any one second, mean over the
run), 429s (goal 0), replies complete and correct (every reply's final text is the full stream), time
to first visible text (member's message sent → the reply's first post) p50/p99, last token → final
edit p99 (wall clocks of both processes), and bot CPU per message.

    python bench/bench_discord.py                      # 1, 100 and 1000 conversations
    python bench/bench_discord.py --levels 100 --rate 300 --seconds 5
    python bench/bench_discord.py --levels 100 --rate 100 --saturation-messages 2000 --baseline
                                                       # CPU per message, and its ratio to bare discord.py
    python bench/bench_discord.py --streaming 200      # under Discord's limits
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.backends.base import Backend, GenerationParams  # noqa: E402


class InstantBackend(Backend):
    """Answers at once with a tag of the member's last line, so replies can be matched to messages."""

    kind = "instant"

    @property
    def model_name(self) -> str:
        return "instant"

    async def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        yield "re: " + messages[-1]["content"].rsplit("\n", 1)[-1].split(": ")[-1]


STREAM_PIECES = 20
STREAM_STEP_S = 0.1


def streamed_reply(tag: str) -> str:
    return f"re: {tag}" + "".join(f" w{i}" for i in range(1, STREAM_PIECES))


class StreamingBackend(Backend):
    """About 2 s per reply in 20 pieces; the wall time of each reply's last token goes to `log_path`."""

    kind = "streaming"

    def __init__(self, log_path: Path):
        self._log = open(log_path, "a", buffering=1)

    @property
    def model_name(self) -> str:
        return "streaming"

    async def stream(self, messages: list[dict], params: GenerationParams) -> AsyncIterator[str]:
        tag = messages[-1]["content"].rsplit("\n", 1)[-1].split(": ")[-1]
        yield f"re: {tag}"
        for i in range(1, STREAM_PIECES):
            await asyncio.sleep(STREAM_STEP_S)
            yield f" w{i}"
        self._log.write(json.dumps({"tag": tag, "at": time.time()}) + "\n")


# -- the bot side (its own process by default) ------------------------------------------------------

async def serve_bot(api_base: str, gateway_url: str, data_dir: str, mode: str = "instant", rps: str = "100000",
                    generations: str = "8") -> None:
    from bot.backends.pool import BackendPool
    from bot.discord_bot import PersonaBot, apply_endpoints
    from bot.engine import ChatEngine
    from bot.persona import load_personas
    from bot.settings import DiscordSettings, load_settings
    from bot.store import open_db

    settings = load_settings(data_dir=Path(data_dir), personas_dir=REPO / "personas", log_level="WARNING")
    settings.discord = DiscordSettings(token="bench", api_base=api_base, gateway_url=gateway_url, max_queue=100_000,
                                       requests_per_second=float(rps), max_concurrent_generations=int(generations))
    apply_endpoints(settings.discord)
    personas = load_personas(settings.core.resolved_personas_dir())
    pool = BackendPool(settings)
    backend = InstantBackend() if mode == "instant" else StreamingBackend(Path(data_dir) / "last_tokens.jsonl")
    for name in personas:
        pool.pin(name, backend)
    engine = ChatEngine(pool.for_persona, other_persona_labels=[l for p in personas.values() for l in p.labels])
    async with open_db(settings.core.db_path) as db:
        async with PersonaBot(settings=settings, db=db, pool=pool, engine=engine, personas=personas,
                              guild_ready_timeout=0.05) as bot:
            # Stop cleanly on SIGTERM from the driver (so a profiler wrapping this process can write).
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(bot.close()))
            await bot.start("bench")


async def serve_bare(api_base: str, gateway_url: str) -> None:
    """The baseline: discord.py alone, answering each mention with `channel.send(..., reference=...)`.

    No routing, history, model, budget or logging: what receiving a message and posting a reply
    costs in discord.py itself on this machine, the floor under the bot's CPU per message."""
    import discord

    from bot.discord_bot import apply_endpoints
    from bot.settings import DiscordSettings

    apply_endpoints(DiscordSettings(token="bench", api_base=api_base, gateway_url=gateway_url))
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)

    @client.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            await message.channel.send(f"re: {message.content.split()[-1]}", reference=message, mention_author=False)

    async with client:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(client.close()))
        await client.start("bench")


def _bot_process_main(argv: list[str]) -> None:
    import logging

    from bot.cli.common import run_async

    logging.basicConfig(level=logging.WARNING)
    if argv[0] == "--bare":
        run_async(serve_bare(*argv[1:3]))
    else:
        run_async(serve_bot(*argv))   # on the event loop `personabot run` uses (uvloop where installed)


# -- the driver side ------------------------------------------------------------------------------

class Tracker:
    """Matches the bot's posts to the messages they answer and keeps latencies."""

    def __init__(self, fake):
        self.fake = fake
        self.sent_at: dict[tuple[int, int], float] = {}      # (conversation, seq) → injected at
        self.covered: dict[int, int] = {}                    # conversation → highest seq answered
        self.latencies: list[float] = []
        self.replies = 0
        self.waiters: dict[int, asyncio.Future] = {}
        self.channel_conv: dict[int, int] = {}
        fake.on_sent.append(self._on_sent)

    def _on_sent(self, sent) -> None:
        if sent.kind != "create" or not sent.content or not sent.content.startswith("re: c"):
            return
        now = time.perf_counter()
        conv, seq = (int(x) for x in sent.content[len("re: c"):].split("m"))
        self.replies += 1
        done = self.covered.get(conv, -1)
        for s in range(done + 1, seq + 1):
            at = self.sent_at.pop((conv, s), None)
            if at is not None:
                self.latencies.append(now - at)
        self.covered[conv] = max(done, seq)
        fut = self.waiters.pop(conv, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def send(self, conv: int, seq: int, channel: int, member: int) -> None:
        self.sent_at[(conv, seq)] = time.perf_counter()
        await self.fake.member_message(channel, member, f"c{conv}m{seq}", mention_bot=True)

    def reply_future(self, conv: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiters[conv] = fut
        return fut

    def reset(self) -> None:
        self.latencies.clear()
        self.replies = 0


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (this one when pid is None), from /proc."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU the bot process spends per message: what the bot costs, whatever else shares the machine."""

    def __init__(self, pid: int | None):
        self.pid = pid

    def __enter__(self):
        self.start = _cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc):
        self.seconds = _cpu_seconds(self.pid) - self.start


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def saturate(tracker: Tracker, convs: list[tuple[int, int]], seq0: int, per_conv: int, timeout: float) -> dict:
    tracker.reset()
    started = time.perf_counter()

    async def talk(i: int, channel: int, member: int) -> None:
        for k in range(per_conv):
            fut = tracker.reply_future(i)
            await tracker.send(i, seq0 + k, channel, member)
            await fut

    await asyncio.wait_for(asyncio.gather(*(talk(i, c, m) for i, (c, m) in enumerate(convs))), timeout)
    elapsed = time.perf_counter() - started
    total = per_conv * len(convs)
    return {"messages": total, "seconds": round(elapsed, 3), "msgs_per_s": round(total / elapsed, 1),
            "p50_ms": round(_pct(tracker.latencies, 0.5) * 1000, 1), "p99_ms": round(_pct(tracker.latencies, 0.99) * 1000, 1)}


async def open_loop(tracker: Tracker, convs: list[tuple[int, int]], seq0: dict[int, int], rate: float, seconds: float,
                    rng: random.Random) -> dict:
    tracker.reset()
    total = int(rate * seconds)
    started = time.perf_counter()
    next_at = started
    last_seq: dict[int, int] = {}
    for _ in range(total):
        next_at += rng.expovariate(rate)
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        i = rng.randrange(len(convs))
        seq = seq0[i]
        seq0[i] += 1
        last_seq[i] = seq
        channel, member = convs[i]
        await tracker.send(i, seq, channel, member)
    deadline = time.perf_counter() + 30
    while any(tracker.covered.get(i, -1) < s for i, s in last_seq.items()) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    lost = len(tracker.sent_at)
    return {"messages": total, "offered_per_s": rate, "handled_per_s": round((total - lost) / elapsed, 1),
            "replies": tracker.replies, "p50_ms": round(_pct(tracker.latencies, 0.5) * 1000, 1),
            "p99_ms": round(_pct(tracker.latencies, 0.99) * 1000, 1), "lost": lost}


async def run_level(n: int, args, rng: random.Random, bare: bool = False) -> dict:
    from bot.store import open_db
    from bot.store.consent import set_consent
    from tests.support.fake_discord import FakeDiscord

    fake = FakeDiscord()
    convs = [(fake.add_channel(f"room-{i}"), fake.add_member(f"member-{i}")) for i in range(n)]
    await fake.start()
    data_dir = tempfile.mkdtemp(prefix="personabot-bench-")
    async with open_db(Path(data_dir) / "personabot.db") as db:   # consent logging on: everyone opted in
        for _, member in convs:
            if not args.no_consent:
                await set_consent(db, str(member), True, "1")
    child = None
    bot_task = None
    if bare:
        child = subprocess.Popen([sys.executable, __file__, "--serve-bot", "--bare", fake.api_base, fake.gateway_url])
    elif args.same_process:
        bot_task = asyncio.create_task(serve_bot(fake.api_base, fake.gateway_url, data_dir, "instant",
                                                 str(args.requests_per_second)))
    else:
        child = subprocess.Popen([sys.executable, *os.environ.get("BENCH_BOT_PREFIX", "").split(), __file__, "--serve-bot",
                                  fake.api_base, fake.gateway_url, data_dir, "instant", str(args.requests_per_second)])
    tracker = Tracker(fake)
    try:
        await asyncio.wait_for(fake.identified.wait(), 60)
        await asyncio.sleep(0.3)   # the bot's guild_ready_timeout
        seq = {i: 0 for i in range(n)}
        # Warm up: one exchange per conversation (first history read, first consent rows).
        await saturate(tracker, convs, 0, 1, 120)
        for i in seq:
            seq[i] = 1
        pid = child.pid if child is not None else None
        per_conv = max(2, args.saturation_messages // n)
        with CpuMeter(pid) as cpu:
            sat = await saturate(tracker, convs, 1, per_conv, 300)
        sat["bot_cpu_ms_per_msg"] = round(cpu.seconds * 1000 / sat["messages"], 2)
        for i in seq:
            seq[i] = 1 + per_conv
        result = {"conversations": n, "load_avg_1m": round(os.getloadavg()[0], 1), "saturation": sat}
        if n > 1:
            with CpuMeter(pid) as cpu:
                result["open_loop"] = await open_loop(tracker, convs, seq, args.rate, args.seconds, rng)
            result["open_loop"]["bot_cpu_ms_per_msg"] = round(cpu.seconds * 1000 / result["open_loop"]["messages"], 2)
        return result
    finally:
        if bot_task is not None:
            bot_task.cancel()
            await asyncio.gather(bot_task, return_exceptions=True)
        if child is not None:
            child.terminate()
            child.wait(10)
        await fake.stop()


async def run_streaming(n: int, args) -> dict:
    """N conversations at once under Discord's limits, each reply streaming for about 2 s."""
    from tests.support.fake_discord import FakeDiscord

    fake = FakeDiscord()
    fake.enforce_limits(global_per_s=50, channel_messages=(5, 5.0))
    convs = [(fake.add_channel(f"room-{i}"), fake.add_member(f"member-{i}")) for i in range(n)]
    by_channel = {c: i for i, (c, _) in enumerate(convs)}
    await fake.start()
    data_dir = tempfile.mkdtemp(prefix="personabot-bench-")
    rps = args.requests_per_second if args.requests_per_second != DEFAULT_RPS else 45.0
    child = subprocess.Popen([sys.executable, *os.environ.get("BENCH_BOT_PREFIX", "").split(), __file__, "--serve-bot",
                              fake.api_base, fake.gateway_url, data_dir, "streaming", str(rps), str(n)])
    sent_at: dict[int, float] = {}
    first_post: dict[int, float] = {}
    final_at: dict[int, float] = {}
    wall_offset = time.time() - time.monotonic()

    def on_sent(sent) -> None:
        i = by_channel.get(sent.channel_id)
        if i is None or sent.kind not in ("create", "edit"):
            return
        if sent.kind == "create" and i not in first_post:
            first_post[i] = sent.at
        if sent.content == streamed_reply(f"c{i}m0"):
            final_at.setdefault(i, sent.at)

    fake.on_sent.append(on_sent)
    try:
        await asyncio.wait_for(fake.identified.wait(), 60)
        await asyncio.sleep(0.5)
        first_request = len(fake.request_times)
        with CpuMeter(child.pid) as cpu:
            started = time.monotonic()
            for i, (channel, member) in enumerate(convs):
                sent_at[i] = time.monotonic()
                await fake.member_message(channel, member, f"c{i}m0", mention_bot=True)
            deadline = time.monotonic() + 300
            while len(final_at) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)     # anything still arriving (it would be a duplicate or a late edit)
            elapsed = time.monotonic() - started
        times = fake.request_times[first_request:]
        tokens = {}
        with open(Path(data_dir) / "last_tokens.jsonl") as f:
            for line in f:
                row = json.loads(line)
                tokens[row["tag"]] = row["at"]
        last_to_final = [final_at[i] + wall_offset - tokens[f"c{i}m0"] for i in final_at if f"c{i}m0" in tokens]
        correct = sum(1 for i, (channel, _) in enumerate(convs)
                      if [m["content"] for m in fake.bot_messages(channel)] == [streamed_reply(f"c{i}m0")])
        ttfv = [first_post[i] - sent_at[i] for i in first_post]
        span = (times[-1] - times[0]) if len(times) > 1 else 1.0
        return {
            "conversations": n, "load_avg_1m": round(os.getloadavg()[0], 1), "seconds": round(elapsed, 1),
            "requests": len(times), "requests_per_s_peak": _peak_per_second(times),
            "requests_per_s_mean": round(len(times) / span, 1), "rate_limited_429": len(fake.rate_limited),
            "replies_complete_and_correct": correct,
            "edits": sum(1 for s in fake.sent if s.kind == "edit"),
            "first_visible_p50_s": round(_pct(ttfv, 0.5), 2), "first_visible_p99_s": round(_pct(ttfv, 0.99), 2),
            "last_token_to_final_edit_p99_s": round(_pct(last_to_final, 0.99), 2),
            "last_token_to_final_edit_p50_s": round(_pct(last_to_final, 0.5), 2),
            "bot_cpu_ms_per_msg": round(cpu.seconds * 1000 / n, 2),
        }
    finally:
        child.terminate()
        child.wait(10)
        await fake.stop()


DEFAULT_RPS = 100000.0


def _level_line(r: dict) -> str:
    s = r["saturation"]
    line = (f"{r['conversations']:>5} conversations, {r['bot']} (load {r['load_avg_1m']}) | saturated: {s['msgs_per_s']:>7.1f} msg/s "
            f"(p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, CPU {s['bot_cpu_ms_per_msg']} ms/msg)")
    if "open_loop" in r:
        o = r["open_loop"]
        line += (f" | at {o['offered_per_s']:.0f} msg/s: handled {o['handled_per_s']} msg/s, p50 {o['p50_ms']} ms, "
                 f"p99 {o['p99_ms']} ms, lost {o['lost']}, CPU {o['bot_cpu_ms_per_msg']} ms/msg")
    return line


def _peak_per_second(times: list[float]) -> int:
    """Most requests in any sliding one-second window (what Discord's global limit counts)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop arrival rate, messages/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="open-loop duration")
    parser.add_argument("--saturation-messages", type=int, default=2000, help="messages per saturation run")
    parser.add_argument("--same-process", action="store_true", help="run the bot in the driver's event loop")
    parser.add_argument("--no-consent", action="store_true", help="members not opted in: nothing is stored (for comparison)")
    parser.add_argument("--requests-per-second", type=float, default=DEFAULT_RPS,
                        help="the bot's Discord request budget (default: unlimited for the CPU levels, 45 with --streaming)")
    parser.add_argument("--streaming", type=int, metavar="N",
                        help="instead: N conversations at once, 2 s streams, under Discord's limits (50/s, 5 per 5 s)")
    parser.add_argument("--baseline", action="store_true",
                        help="also run each level against bare discord.py (no routing, model or logging) and print "
                             "the bot's CPU per message as a ratio to it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.streaming:
        result = await run_streaming(args.streaming, args)
        print(json.dumps(result, indent=2))
        return
    rng = random.Random(7)
    results = []
    for n in args.levels:
        runs = [("bot", False)] + ([("bare discord.py", True)] if args.baseline else [])
        for label, bare in runs:
            r = await run_level(n, args, rng, bare=bare)
            r["bot"] = label
            results.append(r)
            if not args.json:
                print(_level_line(r), flush=True)
        if args.baseline and not args.json:
            bot, base = results[-2], results[-1]
            ratio = lambda key: bot[key]["bot_cpu_ms_per_msg"] / base[key]["bot_cpu_ms_per_msg"]  # noqa: E731
            line = f"{n:>5} conversations: bot CPU per message / bare discord.py: saturated {ratio('saturation'):.2f}x"
            if "open_loop" in bot:
                line += f", at {bot['open_loop']['offered_per_s']:.0f} msg/s {ratio('open_loop'):.2f}x"
            print(line, flush=True)
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "python": sys.version.split()[0], "results": results}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-bot":
        _bot_process_main(sys.argv[2:])
    else:
        asyncio.run(main())
