"""The live view in a real browser: Debian's headless Chromium, driven by Playwright,
against a running daemon (``all``: channel, satellites with the tiny model and the
ground) and a real Mosquitto. The page loads with no console error, draws the
satellites, stations and links, and a query published over MQTT shows in flight and
then answered; an oversized request line gets a 400 and no traceback in the log. The
screenshot is kept: under the test's tmp dir, and copied to
``$LINKSTACK_ARTEFACTS`` when that is set.

The same browser also opens ``linkstack view``'s page on a demo's report while
the daemon loads its model.

Needs /usr/bin/chromium (``make tools`` installs it as root on Debian); Playwright
drives that binary and downloads no browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from linkstack.daemon.http import HttpServer
from linkstack.tools.view_cmd import app_handlers, page_data, read_report
from tests.daemon.test_daemon_processes import HANG_S, publish_queries, query

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HTTP_OFFSET_ALL = 3  # daemon.http_port + 3: the all role's endpoint


def keep_artefact(path: Path) -> None:
    """Copy a test's artefact to $LINKSTACK_ARTEFACTS, when that names a folder."""
    where = os.environ.get("LINKSTACK_ARTEFACTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(where) / path.name)


REPORTS = Path(__file__).parents[1] / "tools" / "reports"
MAP = "document.getElementById('map')"


async def oversized_request(port: int) -> int:
    """The status code the endpoint answers a 70 KB request line with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /status?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), HANG_S)
    writer.close()
    return int(head.split()[1])


# where the first RF link's satellite is drawn, in the page's coordinates
HOVER_FIRST_RF = """() => {
  const s = window.linkstackView.snapshot;
  const i = s.rf[0][0];
  const m = document.getElementById('map').getBoundingClientRect();
  return [m.left + (s.lon[i] + 180) / 360 * m.width, m.top + (90 - s.lat[i]) / 180 * m.height];
}"""


def read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=HANG_S) as resp:
        return resp.read()


def snap_meta_names(n: int) -> list[str]:
    return [f"CS-{i:02d}" for i in range(1, n + 1)]


def watch_errors(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(HANG_S * 1000)


async def check_report_view(browser, tmp_path: Path) -> None:
    """``linkstack view``'s page (served here, as the command serves it) on a demo's
    report: the constellation at the last answer, every query listed, no console error."""
    report = REPORTS / "demo-report.json"
    doc = read_report(report)
    server = HttpServer("127.0.0.1", 0)
    for path, handler in app_handlers(*page_data(doc, report.name)).items():
        server.app.router.add_get(path, handler)
    await server.start()
    errors: list[str] = []
    try:
        page = await browser.new_page(viewport={"width": 1600, "height": 900})
        watch_errors(page, errors)
        await page.goto(f"http://127.0.0.1:{server.port}/view")
        await page.wait_for_function(f"Number({MAP}.dataset.snapshots) > 0")
        drawn = await page.evaluate(f"({{...{MAP}.dataset}})")
        answered = await page.eval_on_selector_all(
            "#answered li", "items => items.map(i => i.dataset.id)"
        )
        assert await page.text_content("#mode") == "finished run: demo-report.json"
        shot = tmp_path / "report-view.png"
        await page.screenshot(path=str(shot), full_page=True)
        await page.close()
    finally:
        await server.close()
    keep_artefact(shot)
    assert answered == [q["query_id"] for q in doc["queries"]]
    assert int(drawn["satsDrawn"]) == 12 and int(drawn["stationsDrawn"]) == 5, drawn
    assert errors == []


async def test_the_live_view_draws_the_sky_and_follows_a_query(run, broker, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium "
            "(make tools installs it as root; or apt-get install chromium)"
        )
    # inference timed by a model of an 8B model on board (seconds, not the tiny model's
    # milliseconds on this host): the query stays in flight across a few snapshots
    with run.scenario.open("a") as f:
        f.write('[model]\naccelerator = "reference-744"\nprofile = "qwen3-8b"\n')
        f.write("[power]\nenabled = true\n")  # sunlit or eclipsed on the map
    proc = run.start("all")
    url = f"http://127.0.0.1:{run.http_port + HTTP_OFFSET_ALL}/view"
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            await check_report_view(browser, tmp_path)  # while the daemon loads its model
            await run.ready(proc)
            page = await browser.new_page(viewport={"width": 1600, "height": 900})
            watch_errors(page, errors)
            await page.goto(url)
            # the first snapshot: every satellite and station drawn, CS-08 over Sanya
            await page.wait_for_function(f"Number({MAP}.dataset.snapshots) > 0")
            drawn = await page.evaluate(f"({{...{MAP}.dataset}})")
            snap = await page.evaluate("window.linkstackView.snapshot")
            assert int(drawn["satsDrawn"]) == 12, drawn
            assert int(drawn["stationsDrawn"]) == 5, drawn
            assert int(drawn["rfDrawn"]) == len(snap["rf"]) >= 1, (drawn, snap["rf"])
            assert int(drawn["laserDrawn"]) == len(snap["laser"]), (drawn, snap["laser"])
            assert await page.text_content("#mode") == "live"
            meta = await page.evaluate("window.linkstackView.meta")
            assert meta["power"] and all(x in (0, 1, 2) for x in snap["shadow"]), snap["shadow"]
            # hovering a satellite in view shows its RF link's numbers
            x, y = await page.evaluate(HOVER_FIRST_RF)
            await page.mouse.move(x, y)
            await page.wait_for_selector("#tip:not([hidden])")
            tip = await page.text_content("#tip")
            assert "Eb/N0 up" in tip and "Doppler up" in tip and "elevation" in tip, tip
            # the same as one JSON document
            one = json.loads(await asyncio.to_thread(read_url, url + "/snapshot"))
            assert one["meta"]["satellites"] == snap_meta_names(12)
            assert len(one["snapshot"]["lat"]) == 12 and one["snapshot"]["t_s"] >= snap["t_s"]
            # the daemon's endpoint refuses an oversized request line cleanly, goes on
            assert await oversized_request(run.http_port + HTTP_OFFSET_ALL) == 400

            asked = query("q-view", "Seen in the browser?")
            asked["params"]["max_new_tokens"] = 32
            await publish_queries(broker.port, [asked])
            await page.wait_for_selector("#in-flight li[data-id='q-view']")
            leg = await page.text_content("#in-flight li[data-id='q-view']")
            await page.wait_for_selector("#answered li[data-id='q-view']")
            await page.wait_for_function("document.getElementById('roundtrips').dataset.bars > 0")
            await page.wait_for_selector("#in-flight li[data-id='q-view']", state="detached")
            shot = tmp_path / "live-view.png"
            await page.screenshot(path=str(shot), full_page=True)
            seen_errors = list(errors)
            run.stop_all(proc)  # with the page still on its event stream
        finally:
            await browser.close()
    keep_artefact(shot)
    assert shot.stat().st_size > 10_000
    assert "q-view" in leg, leg
    assert seen_errors == []
    assert [r for r in run.records(proc) if r.get("level") == "error"] == []
