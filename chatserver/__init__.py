"""chatserver: a secure, anonymous, end-to-end encrypted counselling chat.

Read docs/architecture.md for the map and docs/promises.md for the promises.
"""

__version__ = "0.1.0"
