"""Fixed texts the chat front end shows, and how history reading recognises them.

The bot's own notices ("busy", "fresh start", "couldn't post") are posted in the conversation, so when history is
read back they must not be mistaken for things the persona said; `RESET_NOTICE` also marks where
the conversation restarts (history reading stops there, so /reset needs no storage).
"""
from __future__ import annotations

BUSY_NOTICE = "⏳ I'm busy answering a lot of people right now. Please try again in a minute."
#: Ends a reply cut short because the bot is restarting (SIGTERM, PERSONABOT_SHUTDOWN_GRACE_S).
SHUTDOWN_NOTICE = "⏸️ (I have to stop here: I'm restarting. Ask me again in a minute.)"
REPLY_FAILED_NOTICE = "⚠️ Discord didn't let me post my whole reply here. Please try again in a moment."
RESET_NOTICE = "🧹 Fresh start: messages above this line are no longer part of the conversation."

CONSENT_POLICY = """\
**What personabot keeps about you** (policy version {version})

• If you **opt in**, what you write to a persona and its replies to you are stored, so admins can \
review them and train better personas. Your 👍/👎 reactions on replies are stored too.
• If you **don't**, your messages are only read to answer you in the moment; nothing you write is \
stored, and it never appears in the bot's logs.
• You can opt out at any time: logging stops with your next message.
• `/privacy export` sends you everything stored about you; `/privacy forget` deletes it."""

NOTICES = (BUSY_NOTICE, RESET_NOTICE, REPLY_FAILED_NOTICE)


def consent_policy(version: str) -> str:
    return CONSENT_POLICY.format(version=version)


def is_notice(text: str) -> bool:
    """A message the bot posted as itself rather than as a persona."""
    return text.startswith(NOTICES)


def is_reset(text: str) -> bool:
    return text.startswith(RESET_NOTICE)
