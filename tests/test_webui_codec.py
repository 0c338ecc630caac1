"""The whole embedded stack as a person meets it: `arrears up` on first run creates the development
keys and prints a `curl` that works; in a real browser (Debian's chromium driven by Playwright)
the dev server's Web UI shows an account's decoded input through the codec server it was wired
to, and the same page shows only ciphertext when the codec server cannot be reached."""
from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest

from infra.temporal import binary
from tests.test_stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a root, offline machine (no sandbox, no background network traffic).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def first_run_stack(tmp_path, monkeypatch):
    # A first run as a developer has it: no keys configured, so `arrears up` generates them.
    for variable in ("ARREARS_CODEC_KEYS", "ARREARS_CODEC_KEYS_FILE", "ARREARS_API_KEY_PEPPER", "DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    s = Stack(tmp_path)
    yield s
    s.kill_everything()


def _curl_line(text: str) -> str:
    [line] = [ln for ln in text.splitlines() if ln.strip().startswith("Try it")]
    return line.split("Try it", 1)[1].strip()


def test_web_ui_decodes_through_the_codec_server_and_shows_ciphertext_without_it(first_run_stack, tmp_path):
    assert CHROMIUM.exists(), ("Debian's chromium is needed at /usr/bin/chromium for this test: "
                               "apt-get install -y chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    stack = first_run_stack
    stack.start("--accounts", "4", "--seconds-per-day", "5")
    stack.wait_until("the stack is up", lambda: "Arrears is up." in stack.text(), 150)
    text = stack.text()
    for name in ("dev-billing", "dev-supervisor", "dev-web-ui"):
        assert f"created development key {name}" in text
        assert (stack.data_dir / "secrets" / f"{name}.key").stat().st_mode & 0o777 == 0o600
    assert (stack.data_dir / "secrets" / "codec-keys").exists()

    # The printed curl works as printed (from the directory `arrears up` ran in).
    curl = _curl_line(text)
    assert "DEMO-004" in curl

    def status() -> dict | None:
        r = subprocess.run(["bash", "-c", curl + " -s"], cwd=stack.data_dir.parent, capture_output=True,
                           text=True, timeout=30)
        try:
            body = json.loads(r.stdout)
        except ValueError:
            return None
        return body if body.get("account_id") == "DEMO-004" else None

    stack.wait_until("the printed curl returns DEMO-004's status", lambda: status() is not None, 90)
    assert "Authorization" in curl
    anonymous = subprocess.run(["bash", "-c", re.sub(r'-H "[^"]*" ', "", curl) + " -s"], capture_output=True,
                               text=True, timeout=30, cwd=stack.data_dir.parent)
    assert "authentication required" in anonymous.stdout

    address = f"127.0.0.1:{stack.temporal_port}"
    described = json.loads(subprocess.run(
        [str(binary("temporal")), "workflow", "describe", "--address", address, "-w", "account-DEMO-004", "-o", "json"],
        capture_output=True, text=True, timeout=30, check=True).stdout)
    run_id = described["workflowExecutionInfo"]["execution"]["runId"]
    url = f"http://localhost:{stack.ui_port}/namespaces/default/workflows/account-DEMO-004/{run_id}/history"
    # DEMO-004's debtor, as the codec server decodes it for an authorised reader.
    key = (stack.data_dir / "secrets" / "dev-web-ui.key").read_text().strip()
    shown = subprocess.run(
        [str(binary("temporal")), "workflow", "show", "--address", address, "-w", "account-DEMO-004", "-r", run_id,
         "-o", "json", "--codec-endpoint", f"http://127.0.0.1:{stack.api_port}/codec", "--codec-auth", f"Bearer {key}"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    import base64

    first_input = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    start = json.loads(base64.b64decode(first_input["data"]))
    debtor = (start.get("state", {}).get("account") or start)["debtor"]["name"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context().new_page()
            page.goto(url)
            page.get_by_text(debtor, exact=False).first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "decoded.png"), full_page=True)

            # The same page with the codec server out of reach: ciphertext, no name.
            blind = browser.new_context().new_page()
            blind.route(re.compile(r".*/codec/.*"), lambda route: route.abort())
            blind.goto(url)
            blind.get_by_text(re.compile(r"YmluYXJ5L2VuY3J5cHRlZA|binary/encrypted")).first.wait_for(timeout=60_000)
            blind.screenshot(path=str(tmp_path / "ciphertext.png"), full_page=True)
            assert debtor not in blind.content()
        finally:
            browser.close()

    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(60) == 0, stack.text()
