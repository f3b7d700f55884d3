"""The `personabot` command line. `main.py` builds the app; each sibling module registers one
command (or group) through `register(app)` and keeps heavy imports inside its functions."""
