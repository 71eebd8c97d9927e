"""The admin audit page against gunicorn with two workers: parallel fetches of the same
studies leave one `study.view` per study, the page filters, and the CSV link exports the
filter."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.text()).then(done, e => done('error: ' + e));
"""

FETCH_ALL = """
const done = arguments[arguments.length - 1];
fetch('/api/v1/studies?limit=100').then(r => r.json()).then(listing => {
  const urls = [];
  for (const s of listing.items) {
    for (const name of ['thumb.png', 'image.vti', 'thumb.png', 'image.vti']) {
      urls.push('/api/v1/studies/' + s.id + '/preview/' + name);
    }
  }
  return Promise.all(urls.map(u => fetch(u, {cache: 'no-store'}).then(r => r.status)));
}).then(codes => done(codes.filter(c => c === 200).length), e => done('error: ' + e));
"""


def _rows(driver) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, ".audit-table thead th")]
    return [
        dict(zip(heads, [td.text for td in tr.find_elements(By.TAG_NAME, "td")], strict=True))
        | {"id": tr.get_attribute("data-entry-id") or ""}
        for tr in driver.find_elements(By.CSS_SELECTOR, ".audit-table tbody tr[data-entry-id]")
    ]


def test_audit_page_filters_and_exports(live_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    driver = browser
    driver.get(live_server + "/login")
    driver.delete_all_cookies()
    driver.get(live_server + "/login")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: "/login" not in d.current_url)
    # What a case list and a review page do at once: every study's thumbnail and image,
    # twice, all in parallel, so both workers serve fetches of the same study.
    fetched = driver.execute_async_script(FETCH_ALL)
    assert isinstance(fetched, int) and fetched >= 24, fetched
    driver.get(live_server + "/admin/audit")
    link = WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.LINK_TEXT, "Audit")))
    assert (link.get_attribute("href") or "").endswith("/admin/audit")
    WebDriverWait(driver, 30).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".audit-table tr[data-entry-id]"))
    )
    rows = _rows(driver)
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids, reverse=True) and len(rows) >= 10

    user = driver.find_element(By.ID, "audit-user")
    user.send_keys("admin", Keys.ENTER)
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: (r := _rows(d)) and all(row["User"] == "admin" for row in r)
    )
    driver.save_screenshot(str(ARTIFACTS / "audit-page.png"))

    # Since this sign-in: one study.view per study, though two workers served the thumbnails.
    listing = driver.execute_async_script(FETCH, "/api/v1/audit?user=admin&limit=1000")
    items = json.loads(listing)["items"]
    mine = []
    for item in items:
        if item["action"] == "auth.login":
            break
        mine.append(item)
    views = Counter(i["study_uid"] for i in mine if i["action"] == "study.view")
    assert len(views) >= 6 and set(views.values()) == {1}, views
    assert all(i["address"] == "127.0.0.1" and i["role"] == "admin" for i in mine)

    href = driver.find_element(By.ID, "audit-csv").get_attribute("href") or ""
    assert href.endswith("/api/v1/audit.csv?user=admin")
    exported = list(csv.DictReader(io.StringIO(driver.execute_async_script(FETCH, href))))
    assert exported[0]["action"] == "audit.export" and exported[0]["username"] == "admin"
    assert {r["username"] for r in exported} == {"admin"}
    assert len(exported) >= len(mine)
