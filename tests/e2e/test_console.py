"""The web console in a real headless Chromium against the real daemon as a subprocess.

A file check crosses a threshold, the incident waits for an approved restart; in the browser: open the
console, open the incident, see its plot, be refused a change without a token, log in with the keyboard,
approve and watch the action run and the incident resolve; on the next incident acknowledge, silence, deny
the action from the queue, pause and resume; log out. Every page is walked with Tab and its accessibility
tree (Chromium's own, over the DevTools protocol) is checked for unnamed controls; any console error or
uncaught exception fails the test. Screenshots land in the test's tmp dir (and in $AIOPS_SCREENSHOT_DIR when
set, which is how docs/img/console-*.png are made).

Chromium is Debian's (scripts/install-test-deps.sh installs it); Playwright only drives it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.daemon import DaemonProcess, wait_for
from tests.e2e.test_loop import HEAL_SCRIPT, MetricWriter
from tests.servers import WebhookReceiver

TOKEN = "console-write-t0ken"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CONTROL_ROLES = {"button", "link", "textbox", "combobox", "checkbox", "radio", "menuitem", "tab", "searchbox"}

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:9464", token: "{token}"}}
notifiers:
  oncall: {{type: webhook, url: "{hook}"}}
checks:
  - name: model-latency
    every: 0.5s
    labels: {{owner: ml-platform}}
    source: {{type: file, path: "{work}/metrics.csv", value_columns: [latency]}}
    detectors:
      - {{type: threshold, above: 500}}
    policy:
      cooldown: 0s
      verify: {{settle: 0.5s, window: 30s}}
      notify: [oncall]
      actions:
        - type: command
          name: restart-model
          mode: approve
          argv: ["{python}", "{work}/heal.py", "{work}", "0"]
          timeout: 30s
"""


@pytest.fixture
def daemon(tmp_path: Path, webhook_receiver: WebhookReceiver) -> Iterator[tuple[DaemonProcess, MetricWriter]]:
    (tmp_path / "heal.py").write_text(HEAL_SCRIPT)
    config = tmp_path / "aiops.yaml"
    config.write_text(
        CONFIG.format(work=tmp_path, token=TOKEN, hook=webhook_receiver.url + "/hook", python=sys.executable)
    )
    writer = MetricWriter(tmp_path)
    proc = DaemonProcess(config, tmp_path).start()
    try:
        yield proc, writer
    finally:
        writer.stop()
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Shots:
    """Full-page screenshots as test artefacts (and docs images when $AIOPS_SCREENSHOT_DIR is set)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.extra = Path(os.environ["AIOPS_SCREENSHOT_DIR"]) if os.environ.get("AIOPS_SCREENSHOT_DIR") else None

    def take(self, page: Page, name: str) -> None:
        path = self.directory / f"console-{name}.png"
        page.evaluate(
            "() => document.activeElement && document.activeElement.blur()"
        )  # no focus ring left by the Tab walk
        page.screenshot(path=str(path), full_page=True)
        if self.extra is not None:  # docs images: 64 colours keep each one small and the text crisp
            self.extra.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                image.convert("RGB").quantize(colors=64).save(self.extra / path.name, optimize=True)


def _actions(daemon: DaemonProcess, state: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{daemon.url}/api/v1/actions", params={"state": state}, timeout=5)
    return list(resp.json()["actions"]) if resp.status_code == 200 else []


def _check_keyboard_and_names(page: Page) -> None:
    """Every visible control is reached by Tab, and every control in the accessibility tree has a name."""
    expected = page.evaluate(
        """() => {
            const all = document.querySelectorAll(
                'a[href], button, input:not([type=hidden]), select, textarea, summary');
            let n = 0;
            for (const el of all) {
                const box = el.getBoundingClientRect();
                if (box.width > 0 && box.height > 0) { el.dataset.tabCheck = String(n++); }
            }
            return n;
        }"""
    )
    reached: set[str] = set()
    for _ in range(expected + 5):
        page.keyboard.press("Tab")
        mark = page.evaluate("() => document.activeElement && document.activeElement.dataset.tabCheck")
        if mark is not None:
            reached.add(mark)
    missing = page.evaluate(
        """(reached) => [...document.querySelectorAll('[data-tab-check]')]
            .filter(el => !reached.includes(el.dataset.tabCheck)).map(el => el.outerHTML.slice(0, 120))""",
        sorted(reached),
    )
    assert not missing, f"{page.url}: not reachable by Tab: {missing}"
    cdp = page.context.new_cdp_session(page)
    try:
        tree = cdp.send("Accessibility.getFullAXTree")
    finally:
        cdp.detach()
    unnamed = [
        node.get("role", {}).get("value")
        for node in tree["nodes"]
        if not node.get("ignored")
        and node.get("role", {}).get("value") in CONTROL_ROLES
        and not str(node.get("name", {}).get("value", "")).strip()
    ]
    assert not unnamed, f"{page.url}: controls without an accessible name: {unnamed}"
    assert any(n.get("role", {}).get("value") == "main" for n in tree["nodes"]), "no main landmark"


def _open(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: {response.status if response else None}"
    _check_keyboard_and_names(page)


@pytest.mark.slow
def test_console_in_a_browser(daemon: tuple[DaemonProcess, MetricWriter], browser: Browser, tmp_path: Path) -> None:
    proc, writer = daemon
    shots = Shots(tmp_path / "screenshots")
    writer.spiking = True
    waiting = wait_for(lambda: _actions(proc, "awaiting_approval"), 30, "an action waiting for approval", proc.logs)
    action_id, incident_id = waiting[0]["id"], waiting[0]["incident_id"]

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    try:
        # reads are open on the loopback without a read token
        _open(page, f"{proc.url}/ui/")
        expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
        expect(page.get_by_role("link", name="Action queue 1 waiting for approval")).to_be_visible()
        shots.take(page, "incidents")
        page.get_by_role("link", name=f"#{incident_id}", exact=True).click()
        expect(page.get_by_role("heading", name=f"Incident #{incident_id}")).to_be_visible()
        plot = page.locator("figure.plot svg").first
        expect(plot).to_be_visible()
        assert "detected" in plot.inner_html()
        expect(page.locator("figure.plot figcaption").first).to_contain_text("latency as collected around the incident")
        _check_keyboard_and_names(page)
        shots.take(page, "incident-waiting")

        # no token, no change: the form is not even offered, and a crafted POST is refused
        expect(page.get_by_role("button", name="Approve")).to_have_count(0)
        page.goto(f"{proc.url}/ui/login")
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        refused = page.request.post(f"{proc.url}/ui/actions/{action_id}/approve", form={"csrf": csrf or ""})
        assert refused.status == 403
        assert _actions(proc, "awaiting_approval"), "a refused approval decided the action"

        # log in with the keyboard only, back on the incident page
        page.goto(f"{proc.url}/ui/incidents/{incident_id}")
        page.get_by_role("link", name="Log in").first.click()
        _check_keyboard_and_names(page)
        shots.take(page, "login")
        page.get_by_label("Token").fill(TOKEN)
        page.get_by_label("Token").press("Enter")
        expect(page.get_by_role("status").filter(has_text="Logged in.")).to_be_visible()
        expect(page.get_by_role("heading", name=f"Incident #{incident_id}")).to_be_visible()
        cookie = next(c for c in context.cookies() if c["name"] == "aiops_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        _check_keyboard_and_names(page)

        # approve, and see it run and heal
        page.get_by_role("button", name=f"Approve action {action_id}").click()
        expect(page.get_by_role("status").filter(has_text="Action approved")).to_be_visible()
        for _ in range(60):
            if page.locator(".state-resolved").count():
                break
            page.wait_for_timeout(500)
            page.reload()
        expect(page.locator("h1 .state-resolved")).to_be_visible()
        expect(page.get_by_role("cell", name="succeeded")).to_be_visible()
        shots.take(page, "incident-resolved")

        # the operator's verdict on it: the label `aiops tune` learns from
        page.get_by_label("Comment").last.fill("paged for a real regression")
        page.get_by_role("button", name="Useful").click()
        expect(page.get_by_role("status").filter(has_text="Verdict recorded.")).to_be_visible()
        expect(page.get_by_text("Current verdict: useful")).to_be_visible()
        recorded = json.loads(proc.cli("incidents", "--json").stdout)
        [mine] = [i for i in recorded if i["id"] == incident_id]
        assert [v["verdict"] for v in mine["verdicts"]] == ["useful"]

        # the next incident: acknowledge, silence, deny its action from the queue
        writer.spiking = True
        second = wait_for(
            lambda: [a for a in _actions(proc, "awaiting_approval") if a["incident_id"] != incident_id],
            30,
            "a second action waiting for approval",
            proc.logs,
        )[0]
        page.goto(f"{proc.url}/ui/incidents/{second['incident_id']}")
        page.get_by_label("Comment").first.fill("looking at it")
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.get_by_role("status").filter(has_text="Incident acknowledged.")).to_be_visible()
        expect(page.locator("h1 .state-acknowledged")).to_be_visible()
        page.get_by_label("Silence for").select_option("1h")
        page.get_by_role("button", name="Silence").click()
        expect(page.get_by_role("status").filter(has_text="Incident silenced.")).to_be_visible()
        _open(page, f"{proc.url}/ui/actions")
        shots.take(page, "queue")
        page.get_by_role("button", name=f"Deny action {second['id']}").click()
        expect(page.get_by_role("status").filter(has_text="Action denied.")).to_be_visible()
        assert not _actions(proc, "awaiting_approval")

        # the kill switch, then the checks page
        page.get_by_role("button", name="Pause all remediations").click()
        expect(page.get_by_role("status").filter(has_text="Kill switch on")).to_be_visible()
        expect(page.get_by_role("status").filter(has_text="Paused: no remediation runs")).to_be_visible()
        assert requests.get(f"{proc.url}/api/v1/status", timeout=5).json()["paused"] is True
        page.get_by_role("button", name="Resume remediations").click()
        expect(page.get_by_role("button", name="Pause all remediations")).to_be_visible()
        _open(page, f"{proc.url}/ui/checks")
        expect(page.get_by_role("cell", name="model-latency")).to_be_visible()
        expect(page.get_by_role("cell", name="ml-platform")).to_be_visible()
        shots.take(page, "checks")
        # a problem the check missed: the third kind of verdict, against a check and a time window
        page.get_by_label("From (UTC)").fill("2026-01-01T10:00:00")
        page.get_by_label("To (UTC)").fill("2026-01-01T10:30:00")
        page.get_by_role("button", name="Record missed problem").click()
        expect(page.get_by_role("status").filter(has_text="Missed problem recorded.")).to_be_visible()
        missed = requests.get(f"{proc.url}/api/v1/verdicts", timeout=5).json()
        assert any(v["verdict"] == "missed" and v["check"] == "model-latency" for v in missed["verdicts"])

        # which remediation heals what: the approved command healed the first incident
        _open(page, f"{proc.url}/ui/effectiveness")
        table = page.get_by_role("table", name="how often a run healed")
        expect(table.get_by_role("cell", name="100 %")).to_be_visible()
        shots.take(page, "effectiveness")

        # a backtest of the same config over the last minutes, saved for the console
        now = time.time()
        out = subprocess.run(
            [sys.executable, "-m", "aiops", "backtest", str(proc.config_path), "--from", str(now - 600),
             "--to", str(now), "--save"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        _open(page, f"{proc.url}/ui/backtests")
        page.get_by_role("table", name="Saved backtests").get_by_role("link").first.click()
        expect(page.get_by_role("heading", name="Backtest")).to_be_visible()
        expect(page.get_by_role("heading", name="#1 model-latency")).to_be_visible()
        expect(page.get_by_role("table", name="Timeline of would-be incident 1")).to_be_visible()
        _check_keyboard_and_names(page)
        shots.take(page, "backtest")

        # log out: the buttons are gone again
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("status").filter(has_text="Logged out.")).to_be_visible()
        page.goto(f"{proc.url}/ui/incidents/{second['incident_id']}")
        expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
        assert not [c for c in context.cookies() if c["name"] == "aiops_session"]
    finally:
        context.close()
    assert not problems, problems
    assert proc.terminate() == 0
