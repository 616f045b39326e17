"""JSON as Socket.IO puts it on the wire, for payloads encoded ahead of sending."""

from __future__ import annotations

import json

# Socket.IO's packet encoding: `json.dumps(data, separators=(",", ":"))`, defaults otherwise.
dumps = json.JSONEncoder(separators=(",", ":")).encode
