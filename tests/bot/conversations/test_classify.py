"""Message classification and reply order: the discord-free rules the chat front end relies on."""
from __future__ import annotations

from bot.conversations.classify import Identity, MessageFacts, classify
from bot.conversations.history import ChatMessage, HistoryItem, in_reply_order

ME, APP, HOOK = 1000, 1000, 555
US = Identity(ME, APP, {"eve": "eve", "tim": "tim"}, {HOOK})


def test_members_mentions_are_cleaned_and_ours_removed():
    item = classify(MessageFacts(5, 42, "Ana", f"<@{ME}> ask <@!77> about it", mentions={77: "Bob"}), US)
    assert item.chat.speaker == "member" and item.chat.content == "ask @Bob about it" and not item.ours


def test_bot_account_posts_are_self_or_system():
    assert classify(MessageFacts(6, ME, "personabot", "hi"), US).chat.speaker == "self"
    assert classify(MessageFacts(7, ME, "personabot", "done", from_interaction=True), US).chat.speaker == "system"
    assert classify(MessageFacts(8, ME, "personabot", "pinned", is_chat=False), US).chat.speaker == "system"


def test_persona_posts_only_through_our_webhooks():
    ours = classify(MessageFacts(9, 321, "EVE", "hello", author_username="EVE", webhook_id=HOOK, author_is_bot=True), US)
    assert ours.chat.speaker == "persona" and ours.chat.persona == "eve" and ours.ours
    via_app = classify(MessageFacts(10, 322, "TIM", "x", author_username="TIM", webhook_id=999, application_id=APP,
                                    author_is_bot=True), US)
    assert via_app.chat.persona == "tim"
    foreign = classify(MessageFacts(11, 323, "EVE", "fake", author_username="EVE", webhook_id=999, author_is_bot=True), US)
    assert foreign.chat.speaker == "bot" and foreign.chat.persona is None


def _item(mid, ours=False, ref=None):
    return HistoryItem(ChatMessage(mid, "a", "A", f"m{mid}", "self" if ours else "member"), ref, ours)


def test_each_reply_follows_what_it_answered():
    recent = [_item(1), _item(2), _item(3), _item(4, ours=True, ref=1), _item(6)]
    ordered = in_reply_order(_item(5), recent, answered={})
    assert [i.chat.id for i in ordered] == [1, 4, 2, 3, 5]       # 6 is newer: left for the next turn
    # A webhook post has no reference: `answered` says what it replied to.
    ordered = in_reply_order(_item(3), [_item(1), _item(2), _item(7, ours=True)], answered={7: 2})
    assert [i.chat.id for i in ordered] == [1, 2, 7, 3]
