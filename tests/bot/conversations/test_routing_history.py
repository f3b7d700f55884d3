"""Routing rules, history → turns, and the recent-messages window."""
from bot.conversations.history import ChatMessage, HistoryItem, RecentMessages, to_turns
from bot.conversations.notices import BUSY_NOTICE, RESET_NOTICE
from bot.conversations.routing import Directory, Incoming
from bot.persona import load_personas
from bot.store.channels import Binding, ChatThread


def directory():
    d = Directory("tim")
    d.bind(Binding("10", "eve", "all"))
    d.bind(Binding("20", "twin", "mention"))
    d.add_thread(ChatThread("30", "eve", "20"))
    return d


def test_routing_rules():
    d = directory()
    assert d.route(Incoming("99")) is None                                        # unbound, no mention
    assert d.route(Incoming("99", mentions_bot=True)).persona == "tim"            # default persona
    assert d.route(Incoming("10")).persona == "eve"                               # 'all' channel
    assert d.route(Incoming("20")) is None                                        # 'mention' channel
    assert d.route(Incoming("20", mentions_bot=True)).persona == "twin"
    assert d.route(Incoming("11", parent_id="10")).persona == "eve"               # thread inherits
    assert d.route(Incoming("30")).reason == "thread"                             # /chat thread
    assert d.route(Incoming("20", replies_to_bot=True, replied_persona="eve")).persona == "eve"
    assert d.route(Incoming("5", is_dm=True)).persona == "tim"
    d.dms_enabled = False
    assert d.route(Incoming("5", is_dm=True)) is None


def test_to_turns(settings):
    personas = load_personas(settings.core.resolved_personas_dir())
    tim = personas["tim"]
    msgs = [
        ChatMessage(1, "u1", "Ann", "old stuff"),
        ChatMessage(2, "bot", "personabot", RESET_NOTICE, "system"),
        ChatMessage(3, "u1", "Ann", "hi"),
        ChatMessage(4, "bot", "personabot", "Hello Ann", "self"),
        ChatMessage(5, "bot", "personabot", BUSY_NOTICE, "self"),
        ChatMessage(6, "w", "EVE", "I'm EVE", "persona", "eve"),
        ChatMessage(7, "u2", "Bo", "and me"),
    ]
    turns = to_turns(msgs, tim, personas)
    assert [(t.author_name, t.content, t.from_persona) for t in turns] == [
        ("Ann", "hi", False), ("TIM", "Hello Ann", True), ("EVE", "I'm EVE", False), ("Bo", "and me", False)]


def test_recent_messages_window():
    r = RecentMessages(per_channel=3)
    item = lambda i: HistoryItem(ChatMessage(i, "u", "U", f"m{i}"))
    r.add(1, item(5))
    assert r.get(1, 3) is None                            # not seeded yet
    r.seed(1, [item(3), item(4), item(2)])
    assert [i.chat.id for i in r.get(1, 3)] == [3, 4, 5]
    r.add(1, item(6))                                     # 2 drops out of the window of 3
    r.edit(1, HistoryItem(ChatMessage(6, "u", "U", "edited")))
    assert [(i.chat.id, i.chat.content) for i in r.get(1, 3)] == [(4, "m4"), (5, "m5"), (6, "edited")]
    r.delete(1, 5)
    assert r.get(1, 3) is None                            # short now: read back from the platform
    r.seed(1, [item(3), item(4), item(6)])
    assert [i.chat.id for i in r.get(1, 3)] == [3, 4, 6]
    r.forget()
    assert r.get(1, 3) is None
