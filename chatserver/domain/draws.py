"""Where the chat's rules get their random values.

On one node they are drawn on the spot. On several nodes every node applies
the same command to its own copy of the state, so the values are drawn once,
by the node that took the command, and travel with it (chatserver/live/);
a resume secret itself stays on that node, and only its keyed hash travels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from chatserver.crypto.tokens import new_id, new_pseudonym, new_secret


class Draws(Protocol):
    def id(self) -> str: ...

    def pseudonym(self) -> str: ...

    def secret(self) -> tuple[str, bytes]:
        """A resume secret for the reply and the keyed hash to keep."""
        ...


class LocalDraws:
    def __init__(self, hash_secret: Callable[[str], bytes]) -> None:
        self._hash = hash_secret

    def id(self) -> str:
        return new_id()

    def pseudonym(self) -> str:
        return new_pseudonym()

    def secret(self) -> tuple[str, bytes]:
        secret = new_secret()
        return secret, self._hash(secret)
