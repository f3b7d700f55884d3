"""Digital twins: a member's own exports (posts included) → a persona that writes like them.

The workers behind `personabot twin ...` and `/twin ...`; the terminal and Discord layers are thin
callers. `create` makes the persona folder under `<data_dir>/personas/` from the shipped twin
template and records its owner; `uploads` detects an export's kind, lists the owner identities in
it and imports it (the raw upload is deleted right after); `build` chains dataset build → train →
eval (→ promote when the gate passes); `insights` says what the twin was trained on; `delete`
removes every row and file of a twin and leaves no copy of its words in the database file.
"""


class TwinError(ValueError):
    """A twin action cannot be done; the message says why in one line (shown as-is to members)."""
