"""The live chat's rules, split by feature; ``service.ChatService`` is the one
object that holds the state and answers every call (docs/design/conversations.md,
"Code").

Each rule module holds functions that take the ChatService first, check,
change its state and return an ``Outcome``; none keeps state of its own, so the
whole live state stays the service's attributes (a snapshot encodes them,
chatserver/live/codec.py). Time comes only from ``chat.clock``, random values
only from ``chat.draws``.
"""
