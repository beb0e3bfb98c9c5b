"""The operator page in a real browser: Debian's chromium, driven through its chromedriver.

One `ecr-catalog serve --demo` process (the embedded moto with the demo data, the hostile
repository included); every number and row on the page is checked against the JSON API.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from service.demo import HOSTILE_NAME

from ..support import ServiceProcess, spawn_service, stop_process, wait_until

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TEAM_A = "group:default/team-a"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("operator-page")
    spawned = spawn_service(tmp, {"refresh": {"interval_seconds": 600}}, args=("--demo",))
    try:
        wait_until(
            lambda: httpx.get(f"{spawned.url}/readyz").json().get("complete"),
            "the demo catalog complete",
            timeout=90,
        )
        yield spawned
    finally:
        stop_process(spawned.process)


def browser(javascript: bool = True) -> WebDriver:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromedriver are required: run `make browser-deps`")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1800"):
        options.add_argument(argument)
    # The console, where the browser reports what the Content-Security-Policy blocked.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    return webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    chrome = browser()
    try:
        yield chrome
    finally:
        chrome.quit()


def ref_of(entity: dict[str, Any]) -> str:
    metadata = entity["metadata"]
    return f"{entity['kind']}:{metadata.get('namespace', 'default')}/{metadata['name']}".lower()


def text(driver: WebDriver, selector: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def listed_refs(driver: WebDriver) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#entities-table tbody tr[data-ref]")
    return [str(row.get_attribute("data-ref")) for row in rows]


def test_the_sources_and_counts_match_readyz(service: ServiceProcess, driver: WebDriver) -> None:
    driver.get(f"{service.url}/")
    readiness = httpx.get(f"{service.url}/readyz").json()
    assert text(driver, "#count-sources") == str(len(readiness["sources"]))
    healthy = sum(1 for source in readiness["sources"] if source["healthy"])
    assert text(driver, "#count-healthy") == str(healthy)
    for kind, count in readiness["snapshot"]["entities"].items():
        assert text(driver, f"#count-{kind}") == str(count)
    assert text(driver, "#state-complete") == "complete"
    rows = driver.find_elements(By.CSS_SELECTOR, "#sources-table tbody tr")
    shown = {
        (row.get_attribute("data-account"), row.get_attribute("data-region")): row.text
        for row in rows
    }
    for source in readiness["sources"]:
        row = shown[(source["account"], source["region"])]
        assert "healthy" in row and str(source["repositories"]) in row
    assert "ok" in text(driver, "#refreshes-table tbody tr")


def test_filtering_by_owner_lists_what_the_api_lists(
    service: ServiceProcess, driver: WebDriver
) -> None:
    driver.get(f"{service.url}/")
    # Choosing applies the filter at once (the page's one script); the button does without.
    Select(driver.find_element(By.ID, "f-owner")).select_by_value(TEAM_A)
    wait_until(lambda: "owner=" in driver.current_url, "the filter applied", timeout=10)
    items = httpx.get(f"{service.url}/entities.json", params={"owner": "team-a"}).json()["items"]
    assert sorted(listed_refs(driver)) == sorted(ref_of(entity) for entity in items)
    assert len(items) == 4
    owners = {
        row.text
        for row in driver.find_elements(By.CSS_SELECTOR, "#entities-table tbody td:nth-child(3)")
    }
    assert owners == {TEAM_A}


def test_an_entity_page_shows_its_facts_posture_and_yaml(
    service: ServiceProcess, driver: WebDriver
) -> None:
    driver.get(f"{service.url}/?q=payments-api#entities")
    (link,) = driver.find_elements(By.CSS_SELECTOR, "#entities-table tbody tr[data-ref] a")
    ref = driver.find_element(By.CSS_SELECTOR, "#entities-table tbody tr[data-ref]")
    expected_ref = ref.get_attribute("data-ref")
    link.click()
    wait_until(lambda: "/entities/resource/" in driver.current_url, "the entity page", timeout=10)
    entity = httpx.get(driver.current_url, headers={"Accept": "application/json"}).json()
    yaml_text = httpx.get(driver.current_url, headers={"Accept": "application/yaml"}).text
    assert text(driver, "#fact-ref") == expected_ref == ref_of(entity)
    assert text(driver, "#fact-owner") == entity["spec"]["owner"]
    annotations = entity["metadata"]["annotations"]
    assert text(driver, "#posture-overall") == annotations["ecr-catalog.io/posture"]
    verdicts = {
        row.get_attribute("data-check"): row.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text
        for row in driver.find_elements(By.CSS_SELECTOR, "#posture-checks tbody tr")
    }
    failed = annotations.get("ecr-catalog.io/posture-failures", "")
    assert {check for check, verdict in verdicts.items() if verdict == "fail"} == set(
        filter(None, failed.split(","))
    )
    assert "latest-image" in verdicts and "encryption" in verdicts
    shown_yaml = driver.find_element(By.ID, "entity-yaml").get_attribute("textContent")
    assert shown_yaml == yaml_text
    console = annotations["backstage.io/view-url"]
    hrefs = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "main ul a")]
    assert console in hrefs
    # curl and Backstage still get YAML from the same URL.
    assert httpx.get(driver.current_url).headers["content-type"].startswith("application/yaml")


def test_the_hostile_repositorys_repairs_open_with_their_rules(
    service: ServiceProcess, driver: WebDriver
) -> None:
    driver.get(f"{service.url}/#left-out")
    arn = f"arn:aws:ecr:us-east-1:123456789012:repository/{HOSTILE_NAME}"
    row = driver.find_element(By.CSS_SELECTOR, f'#repairs-table tr[data-origin="{arn}"]')
    details = row.find_element(By.TAG_NAME, "details")
    assert details.get_attribute("open") is None
    row.find_element(By.TAG_NAME, "summary").click()
    assert details.get_attribute("open") is not None
    reasons = [item.text for item in details.find_elements(By.TAG_NAME, "li")]
    # A 256-character value is no label value; "bad tag!" and the whale are no Backstage tags.
    assert "label 'environment' value sanitised" in reasons
    assert reasons.count("tag 'backstage.io/tags' item dropped") == 2
    # The same repairs as the snapshot's, as /readyz lists them.
    repaired = httpx.get(f"{service.url}/readyz").json()["snapshot"]["repaired"]
    assert reasons == [r.removeprefix(arn + ": ") for r in repaired if r.startswith(arn + ": ")]


def test_the_page_works_without_javascript(service: ServiceProcess) -> None:
    chrome = browser(javascript=False)
    try:
        chrome.get(f"{service.url}/")
        Select(chrome.find_element(By.ID, "f-owner")).select_by_value(TEAM_A)
        # Without the script nothing happens on change (given time to): the button submits.
        time.sleep(1.0)
        assert "owner=" not in chrome.current_url
        chrome.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        wait_until(lambda: "owner=" in chrome.current_url, "the form submitted", timeout=10)
        items = httpx.get(f"{service.url}/entities.json", params={"owner": "team-a"}).json()
        assert sorted(listed_refs(chrome)) == sorted(ref_of(e) for e in items["items"])
        # Landmarks and labels: every field has a label, the page a language and a main.
        assert chrome.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        for landmark in ("header", "nav", "main", "footer"):
            assert chrome.find_elements(By.TAG_NAME, landmark), landmark
        for field in chrome.find_elements(
            By.CSS_SELECTOR, "form.filters select, form.filters input"
        ):
            field_id = field.get_attribute("id")
            assert chrome.find_elements(By.CSS_SELECTOR, f'label[for="{field_id}"]'), field_id
    finally:
        chrome.quit()


def test_the_content_security_policy_blocks_nothing_of_ours(
    service: ServiceProcess, driver: WebDriver
) -> None:
    driver.get_log("browser")  # what earlier tests left
    entity = f"/entities/resource/default/{quote('shared--nginx.us-east-1.123456789012')}"
    for path in ("/", entity):
        driver.get(f"{service.url}{path}")
        # The inline style sheet applied: the header's dark band.
        header = driver.find_element(By.CSS_SELECTOR, "header")
        assert header.value_of_css_property("background-color") == "rgba(27, 31, 36, 1)"
        blocked = [
            entry["message"]
            for entry in driver.get_log("browser")
            if "Content Security Policy" in entry["message"]
        ]
        assert blocked == [], path
    # The inline script ran under the policy: it marks nothing, so ask it to act.
    driver.get(f"{service.url}/")
    Select(driver.find_element(By.ID, "f-account")).select_by_index(1)
    wait_until(
        lambda: "account=" in driver.current_url, "the script applied the filter", timeout=10
    )
    assert not [e for e in driver.get_log("browser") if "Content Security" in e["message"]]


def test_pages_carry_etags_and_revalidate(service: ServiceProcess) -> None:
    headers = {"Accept": "text/html"}
    for path in (
        "/",
        "/?owner=team-a",
        f"/entities/resource/default/{quote('shared--nginx.us-east-1.123456789012')}",
    ):
        first = httpx.get(f"{service.url}{path}", headers=headers)
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
        again = httpx.get(
            f"{service.url}{path}", headers=headers | {"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304, path


def test_a_screenshot_of_the_page(
    service: ServiceProcess, driver: WebDriver, tmp_path: Path
) -> None:
    driver.get(f"{service.url}/")
    shot = tmp_path / "operator-page.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    # `OPERATOR_PAGE_SCREENSHOT=docs/operator-page.png make test` refreshes the picture.
    target = os.environ.get("OPERATOR_PAGE_SCREENSHOT")
    if target:
        Path(target).write_bytes(shot.read_bytes())


# Every run of letters and digits in a table cell, whose pieces lie on more than one line: a
# word the browser broke ("fail" / "ed"). Breaks at "-", "/" or "." fall between such runs.
SPLIT_WORDS = """
const split = [];
for (const cell of document.querySelectorAll("td, th")) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const word of node.data.matchAll(/[\\p{L}\\p{N}]+/gu)) {
      const range = document.createRange();
      range.setStart(node, word.index);
      range.setEnd(node, word.index + word[0].length);
      const lines = new Set();
      for (const rect of range.getClientRects()) {
        if (rect.width > 0) lines.add(Math.round(rect.top));
      }
      if (lines.size > 1) split.push(word[0].slice(0, 40));
    }
  }
}
return split;
"""


@pytest.mark.parametrize("width", [1280, 800, 420])
def test_no_word_in_a_table_cell_is_split_across_lines(
    service: ServiceProcess, driver: WebDriver, width: int
) -> None:
    hostile = httpx.get(f"{service.url}/entities.json", params={"q": "segment"}).json()["items"]
    (entity,) = [e for e in hostile if e["metadata"].get("title") == HOSTILE_NAME]
    pages = [
        "/",
        "/?owner=team-a",
        f"/entities/resource/default/{quote(entity['metadata']['name'])}",
        f"/entities/resource/default/{quote('shared--nginx.us-east-1.123456789012')}",
    ]
    driver.set_window_size(width, 1800)
    try:
        for path in pages:
            driver.get(f"{service.url}{path}")
            # Open every <details>: the rules and repairs in them are table text too.
            driver.execute_script(
                "for (const d of document.querySelectorAll('details')) d.open = true;"
            )
            assert driver.execute_script(SPLIT_WORDS) == [], (path, width)
            # What does not fit scrolls inside its table's box, not the whole page.
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, (path, width, overflow)
    finally:
        driver.set_window_size(1280, 1800)


def test_a_missing_entity_is_a_page_in_the_browser(
    service: ServiceProcess, driver: WebDriver
) -> None:
    missing = f"{service.url}/entities/resource/default/no-such-repository"
    driver.get(missing)
    assert text(driver, "#error") == "404 Not Found"
    assert text(driver, "#error-detail") == "no such entity"
    driver.find_element(By.LINK_TEXT, "Find an entity").click()
    wait_until(lambda: driver.current_url.endswith("/#entities"), "the way back", timeout=10)
    # The same URL stays JSON for everything but a browser.
    assert httpx.get(missing).json() == {"detail": "no such entity"}
    driver.get(f"{service.url}/entities.yaml?ower=team-a")
    assert text(driver, "#error") == "400 Bad Request"
    assert "did you mean 'owner'?" in text(driver, "#error-detail")


def test_an_entity_pages_refs_lead_to_their_pages_and_failures_say_why(
    service: ServiceProcess, driver: WebDriver
) -> None:
    name = "shared--nginx.us-east-1.123456789012"
    driver.get(f"{service.url}/entities/resource/default/{quote(name)}")
    reasons = {
        row.get_attribute("data-check"): (
            row.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text,
            row.find_element(By.CSS_SELECTOR, "td.why").text,
        )
        for row in driver.find_elements(By.CSS_SELECTOR, "#posture-checks tbody tr")
    }
    assert any(verdict == "fail" for verdict, _ in reasons.values())
    for check, (verdict, why) in reasons.items():
        assert bool(why) == (verdict in ("fail", "unknown")), check
    (registry,) = driver.find_elements(By.CSS_SELECTOR, "#fact-dependson a")
    target = registry.text
    registry.click()
    wait_until(lambda: "/entities/resource/default/ecr-" in driver.current_url, "the registry")
    assert text(driver, "#fact-ref") == target
