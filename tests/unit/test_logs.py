"""The log guards: what a record may keep, one record to one line, and the
rate limit. Real handlers writing to a real stream; real aiosqlite and
engine.io where their records are the point."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator

import aiosqlite
import engineio
import pytest

from chatserver import logs

EVIL = "canary-7d2e \nFORGED line\rFORGED-CR \u2028FORGED-LS"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def configured() -> Iterator[tuple[io.StringIO, Clock]]:
    """``logs.configure`` on the real root logger, everything put back after."""
    root = logging.getLogger()
    names = (*logs.LIBRARY_LOGGERS, *logs.QUIET_BELOW_WARNING)
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).filters),
                 logging.getLogger(n).disabled) for n in names}
    saved_root = (root.level, logging.lastResort)
    stream, clock = io.StringIO(), Clock()
    logs.configure("DEBUG", stream=stream, limiter=logs.RateLimiter(clock=clock))
    try:
        yield stream, clock
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logs.SafeHandler)]:
            root.removeHandler(handler)
            handler.close()
        logging.captureWarnings(False)
        root.setLevel(saved_root[0])
        logging.lastResort = saved_root[1]
        for n, (level, filters, disabled) in saved.items():
            logger = logging.getLogger(n)
            logger.setLevel(level)
            logger.filters[:] = filters
            logger.disabled = disabled


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def assert_clean(text: str) -> None:
    assert "canary-7d2e" not in text and "FORGED" not in text


# ------------------------------------------------------------------ what a record keeps

def test_redact_scrubs_addresses_tokens_and_ciphertext() -> None:
    line = ("from 192.168.1.20 and 2001:db8::1 token=Zm9vYmFyYmF6cXV4cXV1eGNvcmdl "
            "id=0123456789abcdef0123456789abcdef ok")
    out = logs.redact(line)
    assert "192.168" not in out and "2001:db8" not in out
    assert "Zm9vYmFy" not in out and "0123456789abcdef" not in out
    assert out.endswith("ok")


def test_library_logger_keeps_templates_only(caplog: pytest.LogCaptureFixture) -> None:
    logger = logs.library_logger()
    logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger=logs.LIBRARY_LOGGER):
        logger.info("Received packet %s data %s", "MESSAGE", "secret-payload-xyz")
    assert "secret-payload-xyz" not in caplog.text
    assert "Received packet %s data %s" in caplog.text


def test_a_library_message_built_with_an_f_string_becomes_its_location(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    logging.getLogger("somelib").warning(f"Invalid session {EVIL}")
    [line] = lines(stream)
    assert_clean(line)
    assert "message not shown: unit/test_logs.py:" in line
    assert "test_a_library_message_built_with_an_f_string" in line


def test_a_library_logger_created_later_and_a_child_are_guarded_by_the_handler(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    # Neither logger existed when configure() ran; neither has a filter.
    logging.getLogger("brand.new.lib").error("user %s failed", EVIL)
    logging.getLogger("chatserver.lib.child").info(EVIL)
    logging.getLogger("aiohttp.web.deeper").warning("%s", EVIL)
    out = lines(stream)
    assert len(out) == 3
    assert_clean(stream.getvalue())
    assert out[0].endswith("brand.new.lib: user %s failed")


def test_exception_text_and_stack_are_dropped_the_type_kept(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    try:
        raise ValueError(EVIL)
    except ValueError:
        logging.getLogger("chatserver.x").exception("failed for %s", "good-reason")
        logging.getLogger("engineio.server").exception("handler error")
    logging.getLogger("chatserver.x").warning("here", stack_info=True)
    out = lines(stream)
    assert_clean(stream.getvalue())
    assert out[0].endswith("chatserver.x: failed for good-reason [ValueError]")
    assert out[1].endswith("engineio.server: handler error [ValueError]")
    assert out[2].endswith("chatserver.x: here") and len(out) == 3


def test_engine_io_messages_built_from_a_request_keep_a_fixed_shape(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    server = engineio.AsyncServer(logger=logs.library_logger())
    # engine.io's own code path for a bad sid query parameter and a bad Origin
    server._log_error_once(f"Invalid session {EVIL}", "bad-sid")
    server._log_error_once(f"Invalid session {EVIL}", "bad-sid")
    server._log_error_once(f"http://{EVIL} is not an accepted origin.", "bad-origin")
    out = [line for line in lines(stream) if "Server initialized" not in line]
    assert_clean(stream.getvalue())
    assert out[0].endswith("ERROR chatserver.lib: Invalid session %s (further occurrences "
                           "of this error will be logged with level INFO)")
    assert out[1].endswith("INFO chatserver.lib: Invalid session %s")
    assert out[2].endswith("chatserver.lib: %s is not an accepted origin. (further "
                           "occurrences of this error will be logged with level INFO)")


async def test_sql_parameters_never_reach_the_handler_at_debug(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    password = "Vinter promenad 7 Sjöutsikt"  # typed into the username field
    async with aiosqlite.connect(":memory:") as db:
        await db.execute("SELECT ? AS username", (password,))
        # aiosqlite is held at WARNING; open it up: the handler still hides
        # the parameters
        logging.getLogger("aiosqlite").setLevel(logging.DEBUG)
        await db.execute("SELECT ? AS username", (password,))
    text = stream.getvalue()
    assert password not in text and "Vinter" not in text and "SELECT" not in text
    assert "aiosqlite: executing %s" in text  # it did log, at DEBUG


def test_python_warnings_pass_the_guard(configured: tuple[io.StringIO, Clock],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    stream, _ = configured
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"unclosed socket raddr=('10.1.2.3', 5555) {EVIL}", ResourceWarning,
                      stacklevel=1)
    captured = capsys.readouterr()
    assert_clean(stream.getvalue() + captured.err + captured.out)
    assert "10.1.2.3" not in stream.getvalue() + captured.err
    assert stream.getvalue().rstrip().endswith(f"py.warnings: {logs.PYTHON_WARNING}")


def test_a_logger_that_does_not_propagate_reaches_the_guarded_last_resort(
        configured: tuple[io.StringIO, Clock], capsys: pytest.CaptureFixture[str]) -> None:
    stream, _ = configured
    lonely = logging.getLogger("lonely.lib")
    lonely.propagate = False
    try:
        lonely.warning(f"peer {EVIL}")
    finally:
        lonely.propagate = True
    assert_clean(stream.getvalue() + capsys.readouterr().err)
    assert "message not shown" in stream.getvalue()


# ------------------------------------------------------------------ one record, one line

def test_no_record_makes_two_lines(configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    own = logging.getLogger("chatserver.transport.http")
    own.warning("bad header %s", EVIL)  # our own logger keeps values, so the escape is what holds
    own.warning("bidi \u202eevil\u202c and ESC \x1b[2J and NEL \x85 and tab\t")
    out = lines(stream)
    assert len(out) == 2
    assert "\\n" in out[0] and "\\r" in out[0] and "\\u2028" in out[0]
    assert "\\u202e" in out[1] and "\\x1b" in out[1] and "\\x85" in out[1] and "\\t" in out[1]
    assert not any(line.startswith("FORGED") for line in stream.getvalue().split("\r"))


def test_one_line_escapes_every_line_breaker() -> None:
    breakers = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits on
    assert len(logs.one_line(f"a{breakers}b").splitlines()) == 1


def test_a_huge_line_is_cut(configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    logging.getLogger("chatserver.x").warning("%s", "y " * 50_000)
    [line] = lines(stream)
    assert len(line) <= logs.MAX_LINE_CHARS + len(" [cut]") and line.endswith("[cut]")


def test_the_handler_guard_cannot_be_skipped_by_a_record_that_was_never_filtered() -> None:
    # A record handed straight to the handler (no logger, no logger filters)
    stream = io.StringIO()
    handler = logs.SafeHandler(stream)
    record = logging.LogRecord("thirdparty", logging.ERROR, __file__, 1, f"x {EVIL}", None, None)
    handler.handle(record)
    assert_clean(stream.getvalue())
    assert len(lines(stream)) == 1


# ------------------------------------------------------------------ rate limit

def _flood(name: str, n: int, level: int = logging.WARNING) -> None:
    logger = logging.getLogger(name)
    for i in range(n):
        logger.log(level, "%s is not connected to namespace %s", i, "/x")


def test_a_flood_writes_burst_lines_then_one_summary_with_the_count(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, clock = configured
    _flood("socketio.server", 20_000)
    assert len(lines(stream)) == logs.LOG_BURST
    assert "similar lines are counted" in lines(stream)[-1]
    clock.now += logs.LOG_WINDOW_SECS
    _flood("socketio.server", 1)  # the next line of that kind: summary first
    out = lines(stream)
    assert len(out) == logs.LOG_BURST + 2
    assert f"suppressed {20_000 - logs.LOG_BURST} similar lines" in out[-2]
    assert out[-2].split(" ", 2)[2].startswith("WARNING socketio.server: ")
    assert out[-1].endswith("socketio.server: %s is not connected to namespace %s")


def test_the_summary_comes_with_any_later_line_or_at_close(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, clock = configured
    _flood("engineio.server", 15, logging.ERROR)
    clock.now += logs.LOG_WINDOW_SECS + 1
    logging.getLogger("chatserver.app").info("something else")
    out = lines(stream)
    assert "ERROR engineio.server: suppressed 5 similar lines" in out[-2]
    assert out[-1].endswith("something else")
    _flood("engineio.server", 13, logging.ERROR)  # a new window: 10 written, 3 counted
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logs.SafeHandler))
    handler.close()
    assert "suppressed 3 similar lines" in lines(stream)[-1]


def test_kinds_are_counted_apart_by_logger_level_and_template(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    _flood("socketio.server", 50)
    _flood("socketio.server", 50, logging.INFO)
    _flood("engineio.server", 50)
    logger = logging.getLogger("socketio.server")
    for _ in range(50):
        logger.warning("another template")
    assert len(lines(stream)) == 4 * logs.LOG_BURST


def test_library_f_strings_with_changing_values_are_one_kind(
        configured: tuple[io.StringIO, Clock]) -> None:
    stream, _ = configured
    logger = logging.getLogger("engineio.server")
    for i in range(5_000):
        logger.error(f"Invalid session {i}")
    assert len(lines(stream)) == logs.LOG_BURST


def test_the_number_of_kinds_tracked_is_bounded() -> None:
    stream, clock = io.StringIO(), Clock()
    limiter = logs.RateLimiter(burst=1, window_secs=60, max_kinds=8, clock=clock)
    handler = logs.SafeHandler(stream, limiter)
    for i in range(100):
        for _ in range(3):  # 1 written, 2 counted per kind
            handler.handle(logging.LogRecord("chatserver.x", logging.INFO, __file__, 1,
                                             f"template {i}", None, None))
        assert len(limiter) <= 8
    # Every kind pushed out had its count written first: nothing is lost.
    summaries = [line for line in lines(stream) if "suppressed 2 similar lines" in line]
    assert len(summaries) == 100 - 8
    handler.close()
    assert len([line for line in lines(stream) if "suppressed 2 similar" in line]) == 100


def test_the_limiter_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        logs.RateLimiter(burst=0)
    with pytest.raises(ValueError):
        logs.RateLimiter(window_secs=0)


def test_configure_twice_leaves_one_handler(configured: tuple[io.StringIO, Clock]) -> None:
    second = logs.configure("INFO", stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs.SafeHandler)]
    assert ours == [second]
