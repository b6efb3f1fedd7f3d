"""The web page in a real browser: Debian's chromium, driven by chromium-driver through Selenium.

A real ``tradebook serve`` process on a free loopback port, a page opened on it:
an order placed through the form shows in the ladder and in "my orders"; another
user crossing it through the API shows in the tape and changes the ladder without
a reload; an order cancelled from the page leaves both; the server restarted under
the page, the page says so, reconnects, resubscribes and goes on updating.

Skips when chromium, chromedriver or Selenium is missing, unless
``TRADEBOOK_REQUIRE_BROWSER`` is set (as CI sets it): then it fails. The
screenshot it takes lands in ``build/screenshots/`` (a CI artifact);
docs/assets/web-page.png is one of them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from _http_support import SECRET

from tradebook.http import issue_token

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
SYMBOL = "BTC/USDT"
T = TypeVar("T")


def _browser_or_skip() -> tuple[str, str]:
    """Chromium's and chromedriver's paths (Selenium importable), or a skip (a failure when one is required)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver (chromium-driver)", driver)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('selenium (pip install -e ".[test]")')
    if missing:
        reason = "the browser tests need " + ", ".join(missing)
        if os.environ.get("TRADEBOOK_REQUIRE_BROWSER"):
            pytest.fail(f"TRADEBOOK_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    assert chromium is not None and driver is not None
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``python -m tradebook serve`` on a given loopback port, over a SQLite file, its log in a file."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.tmp_path = tmp_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        log_path = self.tmp_path / f"serve-{self.runs}.log"
        env = {**os.environ, "TRADEBOOK_AUTH_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "tradebook", "serve", "--port", str(self.port)]
        command += ["--database", str(self.tmp_path / "web.db"), "--instrument", "BTC/USDT:0.01:0.001"]
        command += ["--account", "alice:USDT=100000", "--account", "bob:BTC=10", "--shutdown-timeout", "5"]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.tmp_path)
        deadline = time.monotonic() + 60
        while "running on http://" not in log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    _browser_or_skip()  # no server for a test that will skip
    running = Server(tmp_path, _free_port())
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def browser(server: Server) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,900",
        "--force-device-scale-factor=1",
        "--force-prefers-reduced-motion",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Callable[[dict[str, Any]], T | None], what: str, timeout: float = 15) -> T:
    """Poll the page's state until ``condition(state)`` is truthy; fail saying what was awaited and what was seen."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while True:
        try:
            state = page_state(driver)
            result = condition(state)
        except Exception:  # an element replaced while read (stale)
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; the page shows {state}")
        time.sleep(0.05)


def page_state(driver: Any) -> dict[str, Any]:
    """What the page shows, read from its stable ids and data attributes in one round trip."""
    state: dict[str, Any] = driver.execute_script(
        """
        const rows = (selector, f) => [...document.querySelectorAll(selector)].map(f);
        return {
          status: document.getElementById("status").textContent,
          bids: rows("#ladder .level[data-side=BUY]", (r) => [r.dataset.price, r.dataset.quantity]),
          asks: rows("#ladder .level[data-side=SELL]", (r) => [r.dataset.price, r.dataset.quantity]),
          tape: rows("#tape li", (r) => [r.dataset.tradeId, r.dataset.price, r.dataset.quantity]),
          orders: rows("#my-orders tbody tr", (r) => [r.dataset.orderId, r.dataset.price, r.dataset.status]),
          balances: rows("#balances tbody tr", (r) => r.dataset.asset),
          chart: [document.getElementById("depth-chart").dataset.bidLevels,
                  document.getElementById("depth-chart").dataset.askLevels],
          formShown: !document.getElementById("account").hidden,
          result: document.getElementById("order-result").textContent,
        };
        """
    )
    return state


def place(client: httpx.Client, token: str, side: str, quantity: str, price: str) -> dict[str, Any]:
    body = {"symbol": SYMBOL, "side": side, "quantity": quantity, "price": price}
    response = client.post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def submit_order(driver: Any, side: str, price: str, quantity: str) -> None:
    from selenium.webdriver.common.by import By

    form = driver.find_element(By.ID, "order-form")
    form.find_element(By.CSS_SELECTOR, f"input[name=side][value={side}]").click()
    for name, value in (("price", price), ("quantity", quantity)):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_the_page_trades_live_and_recovers_from_a_dropped_connection(server: Server, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    alice = issue_token("alice", SECRET, ttl=3600)
    bob = issue_token("bob", SECRET, ttl=3600)
    driver = browser
    client = httpx.Client(base_url=server.url, timeout=30)
    try:
        driver.get(server.url + "/?symbol=" + SYMBOL)
        wait_for(driver, lambda s: s["status"] == "live", "the feed to go live")
        assert not page_state(driver)["formShown"]  # no token: market data only

        # A token pasted: the form, the (empty) open orders and the balances.
        driver.find_element(By.ID, "token").send_keys(alice, Keys.TAB)
        wait_for(driver, lambda s: s["formShown"] and s["balances"] == ["USDT"], "alice's balances")
        wait_for(driver, lambda s: s["status"] == "live", "the feed live again, with the private channel")

        # An order through the form: in the ladder and in my orders.
        submit_order(driver, "BUY", "100.00", "0.500")
        state = wait_for(
            driver,
            lambda s: s["bids"] == [["100.00", "0.500"]] and len(s["orders"]) == 1 and s,
            "the bid in the ladder and in my orders",
        )
        [(order_id, price, status)] = state["orders"]
        assert (price, status) == ("100.00", "OPEN") and f"Order {order_id}: OPEN" in state["result"]
        assert state["chart"] == ["1", "0"]

        # Bob crosses it through the API: a trade in the tape, the ladder shrinks, the order is part filled.
        place(client, bob, "SELL", "0.200", "100.00")
        wait_for(
            driver,
            lambda s: (
                s["bids"] == [["100.00", "0.300"]]
                and [t[1:] for t in s["tape"]] == [["100.00", "0.200"]]
                and s["orders"] == [[order_id, "100.00", "PARTIALLY_FILLED"]]
                and s["balances"] == ["BTC", "USDT"]
            ),
            "the trade in the tape, the ladder, my orders and my balances",
        )

        # A second order, cancelled from the page: gone from my orders and from the ladder.
        submit_order(driver, "BUY", "99.00", "1.000")
        second = wait_for(
            driver,
            lambda s: ["99.00", "1.000"] in s["bids"] and next((o[0] for o in s["orders"] if o[1] == "99.00"), None),
            "the second order in the ladder and my orders",
        )
        driver.find_element(By.CSS_SELECTOR, f"#my-orders button.cancel[data-order-id='{second}']").click()
        wait_for(
            driver,
            lambda s: s["bids"] == [["100.00", "0.300"]] and [o[0] for o in s["orders"]] == [order_id],
            "the cancelled order gone from the ladder and my orders",
        )
        cancelled = client.get(f"/api/v1/orders/{second}", headers={"Authorization": f"Bearer {alice}"})
        assert cancelled.json()["status"] == "CANCELLED"

        # A fuller book for the screenshot: asks from bob, bids from alice, two more trades.
        for i, quantity in enumerate(("0.150", "0.400", "0.250", "0.800", "0.600", "1.200")):
            place(client, bob, "SELL", quantity, f"{101 + i * 0.5:.2f}")
        for i, quantity in enumerate(("0.700", "0.350", "1.100", "0.900", "1.500")):
            place(client, alice, "BUY", quantity, f"{99.5 - i * 0.5:.2f}")
        place(client, alice, "BUY", "0.050", "101.00")
        place(client, bob, "SELL", "0.100", "100.00")
        wait_for(
            driver,
            lambda s: len(s["tape"]) == 3 and len(s["asks"]) == 6 and s["bids"][0] == ["100.00", "0.200"],
            "the fuller book",
        )

        # The server goes away under the page: it says so, then comes back by itself.
        server.stop()
        wait_for(driver, lambda s: s["status"] == "reconnecting", "the page to notice the dropped connection")
        server.start()
        state = wait_for(driver, lambda s: s["status"] == "live" and s, "the page to reconnect", timeout=30)
        assert state["bids"][0] == ["100.00", "0.200"] and len(state["asks"]) == 6  # the book as the new server has it
        # Updates flow on the new connection, public and private.
        place(client, bob, "SELL", "0.150", "100.00")
        wait_for(
            driver,
            lambda s: (
                s["bids"][0] == ["100.00", "0.050"]
                and len(s["tape"]) == 4
                and [o for o in s["orders"] if o[0] == order_id] == [[order_id, "100.00", "PARTIALLY_FILLED"]]
            ),
            "a trade after the reconnection",
        )
        # The whole page in the screenshot: the window as tall as the document (the chart redraws on resize).
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1440, height + 140)  # the window's frame is outside the viewport
        time.sleep(0.5)

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "web-page.png"
        assert driver.save_screenshot(str(shot)), shot
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # The restart's refused connections are expected; nothing else may go wrong (no script or CSP errors).
        expected = re.compile(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and not expected.search(e["message"])]
        assert not errors, errors
    finally:
        client.close()
