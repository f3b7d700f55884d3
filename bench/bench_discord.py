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
driver use the other core; `--same-process` runs all in one event loop.

    python bench/bench_discord.py                      # 1, 100 and 1000 conversations
    python bench/bench_discord.py --levels 100 --rate 300 --seconds 5
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


# -- the bot side (its own process by default) ------------------------------------------------------

async def serve_bot(api_base: str, gateway_url: str, data_dir: str) -> None:
    from bot.backends.pool import BackendPool
    from bot.discord_bot import PersonaBot, apply_endpoints
    from bot.engine import ChatEngine
    from bot.persona import load_personas
    from bot.settings import DiscordSettings, load_settings
    from bot.store import open_db

    settings = load_settings(data_dir=Path(data_dir), personas_dir=REPO / "personas", log_level="WARNING")
    settings.discord = DiscordSettings(token="bench", api_base=api_base, gateway_url=gateway_url, max_queue=100_000)
    apply_endpoints(settings.discord)
    personas = load_personas(settings.core.resolved_personas_dir())
    pool = BackendPool(settings)
    backend = InstantBackend()
    for name in personas:
        pool.pin(name, backend)
    engine = ChatEngine(pool.for_persona, other_persona_labels=[l for p in personas.values() for l in p.labels])
    async with open_db(settings.core.db_path) as db:
        async with PersonaBot(settings=settings, db=db, pool=pool, engine=engine, personas=personas,
                              guild_ready_timeout=0.05) as bot:
            # Stop cleanly on SIGTERM from the driver (so a profiler wrapping this process can write).
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(bot.close()))
            await bot.start("bench")


def _bot_process_main(argv: list[str]) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve_bot(*argv))


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


async def run_level(n: int, args, rng: random.Random) -> dict:
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
    if args.same_process:
        bot_task = asyncio.create_task(serve_bot(fake.api_base, fake.gateway_url, data_dir))
    else:
        child = subprocess.Popen([sys.executable, *os.environ.get("BENCH_BOT_PREFIX", "").split(), __file__, "--serve-bot", fake.api_base, fake.gateway_url, data_dir])
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop arrival rate, messages/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="open-loop duration")
    parser.add_argument("--saturation-messages", type=int, default=2000, help="messages per saturation run")
    parser.add_argument("--same-process", action="store_true", help="run the bot in the driver's event loop")
    parser.add_argument("--no-consent", action="store_true", help="members not opted in: nothing is stored (for comparison)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    results = []
    for n in args.levels:
        results.append(await run_level(n, args, rng))
        if not args.json:
            r = results[-1]
            s = r["saturation"]
            line = (f"{n:>5} conversations (load {r['load_avg_1m']}) | saturated: {s['msgs_per_s']:>7.1f} msg/s "
                    f"(p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, bot CPU {s['bot_cpu_ms_per_msg']} ms/msg)")
            if "open_loop" in r:
                o = r["open_loop"]
                line += (f" | at {o['offered_per_s']:.0f} msg/s: handled {o['handled_per_s']} msg/s, "
                         f"p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms, lost {o['lost']}")
            print(line, flush=True)
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "python": sys.version.split()[0], "results": results}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-bot":
        _bot_process_main(sys.argv[2:])
    else:
        asyncio.run(main())
