"""Page helpers for the browser tests: drive the youth page and the console the
way a person would (clicks and typing), and record what crosses the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.browser.conftest import ChatServer, StaffAccount

TIMEOUT_MS = 10_000


@dataclass
class Wire:
    """Every WebSocket frame and HTTP request body a page sent or received."""

    frames: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_ws(ws: Any) -> None:
            ws.on("framesent", lambda payload: self.frames.append(_text(payload)))
            ws.on("framereceived", lambda payload: self.frames.append(_text(payload)))

        page.on("websocket", on_ws)
        page.on("request", lambda req: self.bodies.append(req.post_data_buffer or b""))

    def contains(self, needle: str) -> bool:
        raw = needle.encode("utf-8")
        return any(needle in f for f in self.frames) or any(raw in b for b in self.bodies)


def _text(payload: Any) -> str:
    if isinstance(payload, bytes | bytearray):
        return payload.decode("latin-1")
    return str(payload)


# ---------------------------------------------------------------- youth page


async def open_youth(page: Any, server: ChatServer) -> None:
    await page.goto(server.url + "/")
    await page.wait_for_selector("main[data-screen=safety] #go-on", timeout=TIMEOUT_MS)


async def youth_to_queue(page: Any, server: ChatServer, profile: dict[str, str] | None = None
                         ) -> None:
    """Safety page → profile (filled in or skipped) → waiting in the queue."""
    await open_youth(page, server)
    await page.click("#go-on")
    await page.wait_for_selector("main[data-screen=profile]", timeout=TIMEOUT_MS)
    if profile:
        for name, value in profile.items():
            await page.select_option(f"select[name={name}]", value)
        await page.click("#start")
    else:
        await page.click("#skip")
    await page.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)


async def youth_wait_chat(page: Any) -> None:
    await page.wait_for_selector("main[data-screen=chat] #composer", timeout=TIMEOUT_MS)
    await page.wait_for_selector("#send:not([disabled])", timeout=TIMEOUT_MS)


async def youth_send(page: Any, text: str) -> None:
    await page.fill("#composer", text)
    await page.click("#send")
    await page.wait_for_selector(
        f"#log li.out:has-text({_q(text)}) [data-state=sent]", timeout=TIMEOUT_MS)


async def youth_sees(page: Any, text: str) -> None:
    await page.wait_for_selector(f"#log li.in:has-text({_q(text)})", timeout=TIMEOUT_MS)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- console


async def console_login(page: Any, server: ChatServer, account: StaffAccount,
                        path: str = "/console", lang: str = "en") -> None:
    await page.goto(server.url + path)
    await page.wait_for_selector("form.login", timeout=TIMEOUT_MS)
    if lang:
        await page.select_option("#bar select.lang", lang)
    await page.fill("input[name=username]", account.username)
    await page.fill("input[name=password]", account.password)
    await page.fill("input[name=totp]", await account.code())
    await page.click("#login-submit")
    await page.wait_for_selector("#logout", timeout=TIMEOUT_MS)


async def console_duty_on(page: Any) -> None:
    # Enabled once the socket is connected; only then is aria-pressed the server's word.
    await page.wait_for_selector("#duty:not([disabled])", timeout=TIMEOUT_MS)
    if await page.get_attribute("#duty", "aria-pressed") != "true":
        await page.click("#duty")
    await page.wait_for_selector("#duty[aria-pressed=true]", timeout=TIMEOUT_MS)


async def console_claim_first(page: Any) -> str:
    """Claim the newest queue entry (this test's youth); returns its conversation id.

    Not the first: when an earlier test's windows close, the server may put
    that youth back in the queue, at the front, for the grace period. It keeps
    its older arrival time, so the newest entry is always this test's own.
    """
    await page.wait_for_selector("#queue-list .queue-item", timeout=TIMEOUT_MS)
    conv = await page.eval_on_selector_all(
        "#queue-list .queue-item",
        """items => items
            .map(i => [Number(i.querySelector('.waited')?.dataset.since) || 0,
                       i.dataset.conversation])
            .sort((a, b) => b[0] - a[0])[0][1]""")
    await page.click(f"#claim-{conv}")
    await page.wait_for_selector(f"#tab-{conv}[aria-current=true]", timeout=TIMEOUT_MS)
    return str(conv)


async def console_send(page: Any, conv: str, text: str) -> None:
    await page.click(f"#tab-{conv}")
    await page.fill("#composer", text)
    await page.click("#send")
    await page.wait_for_selector(
        f"#log li.out:has-text({_q(text)}) [data-state=sent]", timeout=TIMEOUT_MS)


async def console_sees(page: Any, conv: str, text: str) -> None:
    await page.click(f"#tab-{conv}")
    await page.wait_for_selector(f"#log li.in:has-text({_q(text)})", timeout=TIMEOUT_MS)


async def console_state(page: Any, conv: str) -> str:
    return str(await page.get_attribute(f"#tab-{conv} .st", "data-state"))


async def storage_report(page: Any) -> dict[str, Any]:
    """What this page's origin holds in the browser (run on a same-origin page)."""
    return dict(await page.evaluate(
        """async () => ({
            cookie: document.cookie,
            local: localStorage.length,
            session: sessionStorage.length,
            idb: indexedDB.databases ? (await indexedDB.databases()).length : 0,
            sw: navigator.serviceWorker
                ? (await navigator.serviceWorker.getRegistrations()).length : 0,
            caches: self.caches ? (await caches.keys()).length : 0,
        })"""))


def files_with(root: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """{file: [needle names]} for every file under root holding any needle."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits = [name for name, needle in needles.items() if needle in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found
