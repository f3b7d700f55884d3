"""Backend tests run against a real loopback HTTP server (`tests/support/openai_server.py`)."""
from tests.support.openai_server import openai_server  # noqa: F401  (registers the fixture)
