"""render_stream: first text at once, throttled edits, splitting, abandonment."""
import asyncio

import pytest

from bot.conversations.streaming import MessageGone, render_stream


class Sink:
    def __init__(self, gone_after: int | None = None):
        self.calls = []
        self.gone_after = gone_after
        self.loop = asyncio.get_running_loop()

    async def send(self, text):
        self.calls.append(("send", len(self.calls), text, self.loop.time()))
        return len(self.calls) - 1

    async def edit(self, handle, text):
        if self.gone_after is not None and len(self.calls) >= self.gone_after:
            raise MessageGone()
        self.calls.append(("edit", handle, text, self.loop.time()))


async def deltas(chunks, delay):
    for c in chunks:
        await asyncio.sleep(delay)
        yield c


async def test_first_send_is_immediate_and_edits_are_throttled():
    sink = Sink()
    chunks = [f"{i} " for i in range(20)]
    result = await render_stream(deltas(chunks, 0.01), sink, edit_interval_s=0.05)
    assert result.text.strip() == "".join(chunks).strip()
    assert sink.calls[0][0] == "send" and result.first_visible_s < 0.05
    edit_times = [c[3] for c in sink.calls if c[0] == "edit"]
    assert 1 <= len(edit_times) <= 6
    assert all(b - a >= 0.045 for a, b in zip(edit_times, edit_times[1:]))
    assert sink.calls[-1][2] == "".join(chunks).strip()


async def test_long_stream_opens_new_messages():
    sink = Sink()
    result = await render_stream(deltas(["word " * 300] * 3, 0.0), sink, edit_interval_s=0.01)
    assert len(result.handles) == 3
    assert all(len(c[2]) <= 2000 for c in sink.calls)


async def test_gone_message_abandons_and_closes_the_stream():
    closed = asyncio.Event()

    async def endless():
        try:
            while True:
                await asyncio.sleep(0.005)
                yield "x "
        finally:
            closed.set()

    result = await render_stream(endless(), Sink(gone_after=2), edit_interval_s=0.01)
    assert result.abandoned and closed.is_set()


async def test_stream_errors_propagate():
    async def broken():
        yield "a"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await render_stream(broken(), Sink(), edit_interval_s=0.01)


async def test_a_reply_on_screen_whole_ends_without_waiting_for_the_edit_interval():
    # The stream's end arrives after its only text was posted (an instant backend whose generator
    # finishes a step later): nothing is left to edit, so the conversation must not be held for the
    # edit interval. A 30 s interval makes a wrongful wait fail the timeout, not slow the test.
    async def instant():
        yield "all of it"
        await asyncio.sleep(0)   # the producer ends after render_stream's first post

    sink = Sink()
    result = await asyncio.wait_for(render_stream(instant(), sink, edit_interval_s=30.0), 5.0)
    assert [c[:3] for c in sink.calls] == [("send", 0, "all of it")]
    assert result.edits == 0 and result.text == "all of it"
