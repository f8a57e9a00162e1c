"""The emulator's dashboard (/_emulator/ui) in a real browser.

Starts the built emulator (--port 0), makes through the API a sandbox with an item, a location,
a receipt and a webhook endpoint whose deliveries go dead (a closed port, a one-step retry
schedule and a clock advance), then drives headless Chromium over WebDriver:

- the item's SKU and its stock level are on the page;
- a request made through the API after the page loaded appears in the request journal without
  a reload (or, on an emulator without a journal, in the open tab);
- a dead delivery's replay button makes a new attempt (checked through the API);
- the page's clock control advances the sandbox's clock (checked through the API);
- the page's fault form arms a fault and its button clears them (checked through the API);
- everything the page loaded came from the emulator itself, and the page answers with a
  `Content-Security-Policy` of `default-src 'self'`;
- with --admin-token, the page asks for the token (or takes it from #token=), and the token is
  in neither the page nor its address afterwards.

Run by scripts/test-dashboard. Exits non-zero on the first failed check.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# Longest wait for anything the page or the emulator does, in seconds.
WAIT_S = 15
SKU = "DASH-MUG-BLUE"


class Emulator:
    def __init__(self, binary, *args):
        self.proc = subprocess.Popen(
            [binary, "serve", "--port", "0", "--log", "warn", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base = None
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("export TWH_BASE_URL="):
                self.base = line.strip().split("=", 1)[1]
                break
        if not self.base:
            self.stop()
            raise SystemExit("the emulator did not print its URL")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def call(self, method, path, body=None, key=None, headers=None):
        h = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if key:
            h["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=WAIT_S) as r:
                text = r.read().decode()
                return r.status, r.headers, (json.loads(text) if text and "json" in r.headers.get("Content-Type", "") else text)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, e.headers, (json.loads(text) if text.startswith("{") else text)


def ok(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"  ok  {what}")


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,900", "--force-color-profile=srgb"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def click(driver, what, selector, timeout=WAIT_S):
    """Clicks the first element matching `selector`, finding it again if the page re-rendered it
    between the find and the click (a live page replaces rows as data arrives)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = driver.find_elements(By.CSS_SELECTOR, selector)
            if found:
                found[0].click()
                return
        except StaleElementReferenceException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out clicking {what} ({selector})")
        time.sleep(0.1)


def wait(driver, what, fn, timeout=WAIT_S):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: fn(d))
    except TimeoutException:
        raise AssertionError(f"timed out waiting for: {what}") from None


def until(what, fn, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {what}")


def sandbox_now(emu, sandbox_id):
    status, _, body = emu.call("GET", f"/_emulator/sandboxes/{sandbox_id}/clock")
    if status == 404:
        status, _, body = emu.call("GET", "/_emulator/clock")
    assert status == 200, body
    return body["now"]


def parse_time(text):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def setup(emu):
    status, _, sb = emu.call("POST", "/v1/sandboxes", {"name": "dashboard test", "seed": "demo"})
    ok(status == 201, "a sandbox is created")
    key = sb["secret_key"]
    _, _, item = emu.call("POST", "/v1/items", {"sku": SKU, "name": "Mug, blue"}, key)
    _, _, loc = emu.call("POST", "/v1/locations", {"code": "DASH-WH", "name": "Dashboard warehouse"}, key)
    port = closed_port()
    status, _, endpoint = emu.call("POST", "/v1/webhook-endpoints", {"url": f"http://127.0.0.1:{port}/hook", "event_types": ["stock_movement.created"]}, key)
    ok(status == 201, "a webhook endpoint to a closed port")
    status, _, _ = emu.call(
        "POST", "/v1/stock-movements",
        {"type": "receipt", "item_id": item["id"], "location_id": loc["id"], "quantity": 17},
        key, {"Idempotency-Key": "dash-receipt-1"},
    )
    ok(status == 201, "a receipt of 17")

    def dead():
        emu.call("POST", "/_emulator/clock/advance", {"seconds": 5})
        _, _, page = emu.call("GET", f"/v1/webhook-deliveries?status=dead&endpoint_id={endpoint['id']}", key=key)
        return page["data"]

    deliveries = until("the delivery to go dead", dead)
    ok(len(deliveries) == 1, "its delivery is dead after its one retry")
    return sb, item, loc, deliveries[0]


def check_same_origin(driver, base):
    origin = urlparse(base)
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    ok(len(resources) >= 4, f"the page loaded its scripts and styles ({len(resources)} resources)")
    foreign = [u for u in resources if urlparse(u).netloc != origin.netloc]
    ok(not foreign, f"every resource is the emulator's own (foreign: {foreign})")
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    foreign = [u for u in requested if not u.startswith(("data:", base + "/"))]
    ok(requested and not foreign, f"every request of the browser went to the emulator ({len(requested)} requests; foreign: {foreign})")


def main_flow(emu, screenshot):
    sb, item, loc, dead = setup(emu)
    key = sb["secret_key"]

    status, headers, html = emu.call("GET", "/_emulator/ui")
    csp = headers.get("Content-Security-Policy", "")
    ok(status == 200 and "text/html" in headers.get("Content-Type", ""), "GET /_emulator/ui answers the page")
    ok("default-src 'self'" in csp, f"the page's CSP is default-src 'self' ({csp})")
    ok("sk_test_" not in html and "rk_test_" not in html, "the page's HTML holds no key")

    driver = browser()
    try:
        driver.get(f"{emu.base}/_emulator/ui#sandbox={sb['id']}")
        # The item's SKU and its level.
        row = wait(driver, f"the row of {SKU}", lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-sku="{SKU}"]'))[0]
        total = row.find_element(By.CSS_SELECTOR, "td.total").text
        ok(total == "17", f"{SKU} shows its level of 17 (shows {total!r})")
        ok("DASH-WH" in row.text and "17" in row.text, f"the level is shown by location ({row.text!r})")
        driver.execute_script("window.__notReloaded = true")

        # A request made after the page loaded appears without a reload.
        journal, _, _ = emu.call("GET", "/_emulator/requests?limit=1")
        if journal == 200:
            driver.find_element(By.CSS_SELECTOR, '[data-tab="requests"]').click()
            rid = f"live-{int(time.time() * 1000)}"
            emu.call("GET", f"/v1/items?sku={SKU}", key=key, headers={"X-Request-Id": rid})
            entry = wait(driver, "the new request in the journal", lambda d: d.find_elements(By.CSS_SELECTOR, f'details.entry[data-request-id="{rid}"]'))[0]
            entry.find_element(By.TAG_NAME, "summary").click()
            exchange = wait(driver, "the entry to open to its headers and bodies", lambda d: entry.find_elements(By.CSS_SELECTOR, ".exchange pre"))
            texts = [p.text for p in exchange]
            ok(any(rid in t.lower() or "x-request-id" in t.lower() for t in texts), "the entry shows the request's headers")
            ok(any(SKU in t and '"data"' in t for t in texts), "the entry shows the response's body")
            ok(True, "a request made after load appeared in the journal and opens to its exchange")
            _, _, recent = emu.call("GET", "/_emulator/requests?limit=100")
            ok(any(e["request_id"].startswith("dash_") for e in recent["data"]), "the page's own /v1 reads are journaled (as dash_…)")
            ok(not driver.find_elements(By.CSS_SELECTOR, 'details.entry[data-request-id^="dash_"]'), "and the journal tab hides them")
        else:
            print("  --  this emulator has no request journal (GET /_emulator/requests: 404); checking the open tab refreshes instead")
            emu.call("POST", "/v1/items", {"sku": "DASH-LIVE", "name": "Made after load"}, key)
            wait(driver, "the new item without a reload", lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-sku="DASH-LIVE"]'))
            ok(True, "an item made after load appeared without a reload")
        ok(driver.execute_script("return window.__notReloaded === true"), "the page was not reloaded")

        # Replay a dead delivery from the dead-letter queue. The dead-letter tab is opened while
        # the page's read of the stock tab is held up by a delay fault: a tab opened during
        # another's read is still read once that one ends (the page once dropped it).
        attempts_before = len(dead["attempts"])
        status, _, fault = emu.call("POST", "/_emulator/faults", {"action": "delay", "delay_ms": 1500, "method": "GET", "path_prefix": "/v1/locations", "times": 1})
        ok(status == 201, f"a delay fault holds the stock tab's next read ({status})")
        driver.find_element(By.CSS_SELECTOR, '[data-tab="stock"]').click()
        until("the page's read to meet the fault", lambda: not [f for f in emu.call("GET", "/_emulator/faults")[2]["data"] if f["id"] == fault["id"]])
        driver.find_element(By.CSS_SELECTOR, '[data-tab="dead"]').click()
        click(driver, "the replay button", f'tr[data-delivery="{dead["id"]}"] button.replay')

        def replayed():
            _, _, d = emu.call("GET", f"/v1/webhook-deliveries/{dead['id']}", key=key)
            return len(d["attempts"]) > attempts_before and d

        d = until("a new attempt of the replayed delivery", replayed)
        ok(len(d["attempts"]) > attempts_before, f"the replay made a new attempt ({attempts_before} → {len(d['attempts'])})")

        # Advance the sandbox's clock from the page.
        before = parse_time(sandbox_now(emu, sb["id"]))
        global_before = parse_time(emu.call("GET", "/_emulator/clock")[2]["now"])
        per_sandbox = emu.call("GET", f"/_emulator/sandboxes/{sb['id']}/clock")[0] == 200
        field = driver.find_element(By.ID, "advance-seconds")
        field.clear()
        field.send_keys("86400")
        driver.find_element(By.ID, "advance-submit").click()
        after = until("the clock to move a day", lambda: (t := parse_time(sandbox_now(emu, sb["id"]))) >= before + 86400 and t)
        ok(after - before >= 86400, f"the page's control advanced the clock by a day ({after - before:.0f} s)")
        if per_sandbox:
            global_after = parse_time(emu.call("GET", "/_emulator/clock")[2]["now"])
            ok(global_after - global_before < 3600, "only this sandbox's clock moved, not the emulator's")
        wait(driver, "the page to show it", lambda d: "advanced" in d.find_element(By.ID, "status").text)

        # Arm a fault from the page, and clear it.
        driver.find_element(By.CSS_SELECTOR, '[data-tab="faults"]').click()
        form = driver.find_element(By.ID, "fault-form")
        form.find_element(By.NAME, "path_prefix").send_keys("/v1/plans")
        form.find_element(By.NAME, "times").clear()
        form.find_element(By.NAME, "times").send_keys("3")
        # Faults scoped to a sandbox come with per-sandbox clocks (API.md §5); without them
        # the page arms an unscoped one.
        scoped = emu.call("GET", f"/_emulator/sandboxes/{sb['id']}/clock")[0] == 200
        checkbox = form.find_element(By.NAME, "this_sandbox")
        if checkbox.is_selected() != scoped:
            checkbox.click()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        armed = until("the armed fault", lambda: [f for f in emu.call("GET", "/_emulator/faults")[2]["data"] if f.get("path_prefix") == "/v1/plans"])
        ok(armed[0]["remaining"] == 3, "the page armed a fault (3 times, /v1/plans)")
        if scoped:
            ok(armed[0].get("sandbox_id") == sb["id"], "the fault is scoped to the sandbox")
        wait(driver, "the fault in the list", lambda d: "/v1/plans" in d.find_element(By.ID, "faults").text)
        driver.find_element(By.ID, "clear-faults").click()
        until("the faults to be cleared", lambda: emu.call("GET", "/_emulator/faults")[2]["data"] == [])
        ok(True, "the page's clear button disarmed every fault")

        check_same_origin(driver, emu.base)

        # The screenshot: the request journal with the live request open, where there is one;
        # else the stock tab of the demo-seeded sandbox.
        if journal == 200:
            driver.find_element(By.CSS_SELECTOR, '[data-tab="requests"]').click()
            wait(driver, "the open entry", lambda d: d.find_elements(By.CSS_SELECTOR, "details.entry[open] .exchange"))
        else:
            driver.find_element(By.CSS_SELECTOR, '[data-tab="stock"]').click()
            wait(driver, "the stock tab", lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-sku="{SKU}"]'))
        time.sleep(0.3)
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        driver.save_screenshot(screenshot)
        print(f"  ok  screenshot saved to {screenshot}")
    finally:
        driver.quit()


def token_flow(binary):
    admin_token = "dash-admin-token-0123456789"
    emu = Emulator(binary, "--admin-token", admin_token)
    driver = browser()
    try:
        status, _, _ = emu.call("GET", "/_emulator/sandboxes")
        ok(status == 401, "with --admin-token the sandbox listing needs the token")
        status, _, html = emu.call("GET", "/_emulator/ui")
        ok(status == 200 and admin_token not in html, "the page itself holds no token")
        driver.get(f"{emu.base}/_emulator/ui")
        wait(driver, "the token dialog", lambda d: d.find_element(By.ID, "login").get_attribute("open") is not None)
        field = driver.find_element(By.ID, "login-token")
        field.send_keys("wrong")
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait(driver, "the refusal", lambda d: "not this emulator's" in d.find_element(By.ID, "login-error").text)
        ok(True, "a wrong token is refused")
        field.clear()
        field.send_keys(admin_token)
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait(driver, "the demo sandbox", lambda d: d.find_elements(By.CSS_SELECTOR, ".sandbox"))
        ok(True, "with the token typed in, the sandboxes are listed")
        # #token= in a fresh tab: kept in sessionStorage, gone from the address.
        driver.switch_to.new_window("tab")
        driver.get(f"{emu.base}/_emulator/ui#token={admin_token}")
        wait(driver, "the demo sandbox", lambda d: d.find_elements(By.CSS_SELECTOR, ".sandbox"))
        ok(admin_token not in driver.current_url, f"the token left the address bar ({driver.current_url})")
        ok(admin_token not in driver.page_source, "the token is not in the page")
    finally:
        driver.quit()
        emu.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()
    started = time.monotonic()
    emu = Emulator(args.emulator, "--webhook-retry-schedule", "1", "--no-demo-sandbox")
    try:
        print("dashboard, open emulator:")
        main_flow(emu, args.screenshot)
    finally:
        emu.stop()
    print("dashboard, with --admin-token:")
    token_flow(args.emulator)
    print(f"dashboard: all checks passed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
