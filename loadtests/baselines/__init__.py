"""Minimal relay servers driven by the same generator as chatserver, in the
same run, so every figure has a same-machine, same-moment reference:

- ``bare_aiohttp``: an aiohttp WebSocket relay with JSON text frames and no
  framework at all — the ceiling for one Python process on one core.
- ``stock_socketio``: python-socketio on aiohttp with every default left as
  shipped (``async_handlers=True``, the cyclic GC untouched).

Both speak the same tiny relay contract (docs/performance.md, "Baselines"):
``join {conversation, member}`` registers the connection as one end of a
conversation; ``send {conversation, epoch, seq, boxes}`` relays each box as a
``box`` event to the named member and replies ``{ok, seq}``; ``delivered`` and
``typing`` reply ``{ok}``. No validation, no buffering, no queue: whatever
chatserver spends beyond them is what its contract costs.
"""
