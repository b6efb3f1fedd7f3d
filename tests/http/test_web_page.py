"""The web page at ``/``: served from the package with its script and style sheet, outside the API's contract.

The page's behaviour in a real browser is tested in test_web_page_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from _http_support import Api, assert_error, close_api, open_api

from tradebook.http.web import STATIC

# The element ids the WebSocket spec fixes for tests and for anyone scripting the page.
IDS = ("symbol", "ladder", "depth-chart", "tape", "token", "order-form", "my-orders", "balances", "status")


async def test_the_page_and_its_files_are_served_without_credentials(memory_api: Api) -> None:
    page = await memory_api.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    ids = set(re.findall(r'\bid="([^"]+)"', page.text))
    assert set(IDS) <= ids, set(IDS) - ids
    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert sorted(assets) == ["static/app.css", "static/app.js"]
    for asset, kind in zip(sorted(assets), ("text/css", "text/javascript"), strict=True):
        response = await memory_api.client.get("/" + asset)
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind), asset
        assert response.content == (STATIC / Path(asset).name).read_bytes()


async def test_the_page_is_not_part_of_the_api(memory_api: Api) -> None:
    paths = (await memory_api.client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and not [p for p in paths if p.startswith("/static")]
    assert_error(await memory_api.client.get("/static/nothing.js"), 404, "not_found")
    assert_error(await memory_api.client.get("/static/../web.py"), 404, "not_found")
    response = await memory_api.client.post("/")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD"


async def test_the_page_can_be_left_out(tmp_path: Path) -> None:
    api, location = await open_api("memory", tmp_path, web_page=False)
    try:
        assert_error(await api.client.get("/"), 404, "not_found")
        assert_error(await api.client.get("/static/app.js"), 404, "not_found")
    finally:
        await close_api(api, location)


def test_the_page_uses_no_third_party_code() -> None:
    """No build step and nothing fetched from elsewhere: every file is ours, every URL relative."""
    assert sorted(p.name for p in STATIC.iterdir()) == ["app.css", "app.js", "index.html"]
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, flags=re.IGNORECASE), path.name
        assert "import " not in text or path.suffix != ".js", path.name
