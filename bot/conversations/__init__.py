"""The chat front end's discord-free core.

Front ends (Discord today) turn their own objects into these plain types and call in here:

- `split`: cut a reply into messages of at most 2000 characters without breaking words or code
  blocks.
- `streaming`: show a `ReplyStream` in a chat by sending and then editing messages, at most one
  edit per message per interval, through a small `MessageSink` protocol.
- `scheduling`: one reply at a time per conversation (later messages fold into the next turn) and
  a bounded global number of generations with a bounded queue.
- `history`: chat messages read back from the platform → engine `Turn`s.
- `classify`: who wrote a message (member, the bot, one of its personas, another bot), one rule.
- `budget`: one request budget for the platform (global rate, priorities, buckets, edit pacing).
- `channel_health`: channels where the platform refuses the bot something, so it adapts.
- `notices`: the fixed texts the front end shows (consent policy, busy, reset), kept in one place
  so history reading can recognise them.

Nothing here imports `discord`.
"""
