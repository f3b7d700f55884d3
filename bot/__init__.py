"""personabot serving side: settings, store, persona specs, model backends, the conversation
engine and the Discord front end. Nothing here imports torch or training code at import time."""
