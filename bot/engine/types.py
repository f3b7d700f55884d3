"""Plain dataclasses the engine speaks; front ends convert their own objects into these."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the visible conversation, oldest first in a history list."""

    author_id: str
    author_name: str
    content: str
    from_persona: bool = False      # said by the persona being served (becomes an assistant turn)


@dataclass(slots=True)
class Reply:
    """The outcome of one generation, complete once the stream is exhausted."""

    text: str = ""                  # what the member sees (cleaned); "" when silent
    silent: bool = False            # the persona deliberately said nothing
    model: str = ""                 # backend model/adapter that produced it
    stopped_by: str | None = None   # the stop sequence or leaked label that ended the reply, if any
    error: str | None = None        # set when the backend failed; `text` is then the persona's apology
    prompt_messages: int = 0        # history turns that fit in the budget
    attempts: int = 0
    interrupted: bool = False       # cut short by shutdown (`ChatEngine.interrupt`); `text` ends with the notice
