"""The playground page in a real headless browser (Debian's chromium and chromedriver)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server

ARTIFACTS = Path(os.environ.get("RNNSERVE_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture()
def browser() -> Iterator:
    if not (CHROMIUM and DRIVER):
        pytest.skip("no chromium and chromedriver on this machine (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def wait_for(driver, condition, timeout: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def test_typing_shows_intent_sentiment_and_suggestions(model_repository: Path, make_server, browser) -> None:
    server: Server = make_server(model_repository, RNNSERVE_PLAYGROUND="true")
    browser.get(f"{server.url}/playground")
    wait_for(browser, lambda d: text_of(d, "next-model") == "next-word")
    box = browser.find_element("id", "message")
    box.send_keys("play some jazz music ")
    wait_for(browser, lambda d: text_of(d, "intent-label") in {"music", "weather", "booking", "oos"})
    wait_for(browser, lambda d: text_of(d, "sentiment-label") in {"positive", "negative"})
    wait_for(browser, lambda d: d.find_element("id", "message").get_attribute("value") == "play some jazz music ")
    wait_for(browser, lambda d: len(d.find_elements("css selector", "#next-words li")) > 0)
    assert text_of(browser, "intent-label") == "music"
    assert text_of(browser, "intent-latency").endswith(" ms") and text_of(browser, "next-latency").endswith(" ms")
    # Suggestions follow the text from the state: the request that saw "now an" read only "now".
    box.send_keys("now an")
    wait_for(browser, lambda d: text_of(d, "next-pending") == "an")
    assert int(text_of(browser, "next-read")) <= 2
    for item in browser.find_elements("css selector", "#next-words li"):
        assert item.text.startswith("an")
    assert text_of(browser, "status") == ""
    assert not browser.find_element("id", "sentiment-windows").is_displayed()
    # A text longer than a window (as pasted: one input event) is read whole, and the page says so.
    browser.execute_script(
        "const box = document.getElementById('message'); box.value = arguments[0];"
        "box.dispatchEvent(new Event('input'));",
        "the movie was wonderful . " * 40,
    )
    wait_for(browser, lambda d: text_of(d, "sentiment-windows") == "read whole in 4 windows")
    assert text_of(browser, "sentiment-label") == "positive"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "playground.png"))


def test_works_with_api_keys_and_is_off_by_default(model_repository: Path, make_server, browser) -> None:
    server: Server = make_server(model_repository, RNNSERVE_PLAYGROUND="true", RNNSERVE_API_KEYS="s3cret")
    browser.get(f"{server.url}/playground")
    box = browser.find_element("id", "message")
    box.send_keys("will it rain")
    wait_for(browser, lambda d: "401" in text_of(d, "status"))  # no key yet: the page says why
    key = browser.find_element("id", "api-key")
    key.send_keys("s3cret")
    box.click()  # the key field's change event
    box.send_keys(" tomorrow")
    wait_for(browser, lambda d: text_of(d, "intent-label") == "weather")
    wait_for(browser, lambda d: text_of(d, "status") == "")
    off = make_server(model_repository)
    assert httpx.get(f"{off.url}/playground").status_code == 404
    assert httpx.get(f"{server.url}/playground/../app.py").status_code == 404
    page = httpx.get(f"{server.url}/playground")
    assert "script-src 'self'" in page.headers["content-security-policy"]
