"""Plain helpers shared by the test modules, one small module per kind:
``waiting`` (wait for a condition), ``emits`` (what the server puts on the
wire), ``raw_socket`` (a socket.io connection spoken by hand),
``server_process`` (a real ``chatserver`` process). Fixtures, and the
in-process server with its clients (``LiveServer``), live in the conftest.py
of the directory that needs them, not here."""
