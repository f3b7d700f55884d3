"""Prometheus series of the bot (`BotMetrics`) and of the trainer (`TrainerMetrics`).

Each process builds one instance in its entry point and passes it to what it observes; each
instance owns its own `CollectorRegistry` (no module-level state), served by
`bot.observability.server`. The callers make one-line calls:

- `message(persona)`: a member's message was routed to a persona;
- `reply(persona, outcome, first_text_s, complete_s)`: a generation ended (`ChatEngine`);
- `refused(persona)`: no generation slot, the member got the busy notice;
- `backend_error(backend, kind)`: a backend call failed (`kind`: the error's class name);
- `discord_request(route_class, status)`: one REST request to Discord and its HTTP status (0, a
  request that got no response, is counted as `error`). The bot's one request budget
  (`bot.conversations.budget.RequestBudget.observers`) calls it for every request discord.py makes;
  the route classes come from `bot.discord_bot._requests.route_of`;
- `watch_queue(fn)` / `watch_models(fn)`: read at scrape time (queue depth; persona → version).

Labels carry only bounded, non-personal values: persona names, outcome words, backend kinds,
error class names, route classes and status codes. Never message content, never user or channel
ids: route classes are a fixed set of words.
"""
from __future__ import annotations

from typing import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

#: Reply latency buckets (seconds): first text arrives in well under a second on a GPU, a
#: complete reply on the CPU backend can take a minute.
REPLY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)

REPLY_OUTCOMES = ("ok", "silent", "error", "interrupted", "busy")


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._messages = Counter("personabot_messages", "Member messages routed to a persona.", ["persona"], registry=r)
        self._replies = Counter("personabot_replies", "Replies by outcome: ok, silent, error (the apology), "
                                "interrupted (cut short, e.g. at shutdown), busy (no generation slot).",
                                ["persona", "outcome"], registry=r)
        self._reply_seconds = Histogram("personabot_reply_seconds", "Seconds from the start of a generation to its "
                                        "first text (phase=first_text) and to its end (phase=complete).",
                                        ["phase"], buckets=REPLY_BUCKETS, registry=r)
        self._backend_errors = Counter("personabot_backend_errors", "Failed backend calls by backend kind and error class.",
                                       ["backend", "kind"], registry=r)
        self._queue_depth = Gauge("personabot_queue_depth", "Member messages accepted and not yet being answered (waiting for a slot or for their conversation).", registry=r)
        self._discord_requests = Counter("personabot_discord_requests", "REST requests to Discord by route class and "
                                         "HTTP status.", ["route_class", "status"], registry=r)
        self._models: Callable[[], Mapping[str, str | None]] | None = None
        r.register(_ActiveModels(self))

    # -- hooks ----------------------------------------------------------------------------------

    def message(self, persona: str) -> None:
        self._messages.labels(persona).inc()

    def reply(self, persona: str, outcome: str, first_text_s: float | None, complete_s: float) -> None:
        self._replies.labels(persona, outcome).inc()
        if first_text_s is not None:
            self._reply_seconds.labels("first_text").observe(first_text_s)
        if outcome != "interrupted":
            self._reply_seconds.labels("complete").observe(complete_s)

    def refused(self, persona: str) -> None:
        self._replies.labels(persona, "busy").inc()

    def backend_error(self, backend: str, kind: str) -> None:
        self._backend_errors.labels(backend, kind).inc()

    def discord_request(self, route_class: str, status: int | str) -> None:
        self._discord_requests.labels(route_class, "error" if status == 0 else str(status)).inc()

    def watch_queue(self, depth: Callable[[], float]) -> None:
        self._queue_depth.set_function(depth)

    def watch_models(self, active: Callable[[], Mapping[str, str | None]]) -> None:
        """`active()` → persona → the registry version it serves (None: the spec's own model)."""
        self._models = active


class _ActiveModels:
    """`personabot_active_model_info{persona,version} 1`, read from the bot at scrape time."""

    def __init__(self, metrics: BotMetrics):
        self._metrics = metrics

    def describe(self):
        return [GaugeMetricFamily("personabot_active_model_info", "The model version each persona serves (value 1).",
                                  labels=["persona", "version"])]

    def collect(self):
        family = GaugeMetricFamily("personabot_active_model_info", "The model version each persona serves (value 1).",
                                   labels=["persona", "version"])
        if self._metrics._models is not None:
            for persona, version in sorted(self._metrics._models().items()):
                family.add_metric([persona, version or "base"], 1)
        yield family


class TrainerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self._runs = Counter("personabot_training_runs", "Scheduled or forced training runs by outcome "
                             "(promoted, rejected, skipped, failed, ...).", ["persona", "outcome"], registry=self.registry)

    def training_run(self, persona: str, outcome: str) -> None:
        self._runs.labels(persona, outcome).inc()

