"""Storage shared by the bot and the trainer: one SQLite file through aiosqlite, in WAL mode.

`open_db(path)` opens (and migrates) the database; feature modules beside this one take the
connection and own their tables' reads and writes. Every module that stores member data registers
an exporter and a deleter in `bot.store.privacy`.
"""
from bot.store.db import open_db, migrate, current_version, latest_version

__all__ = ["open_db", "migrate", "current_version", "latest_version"]
