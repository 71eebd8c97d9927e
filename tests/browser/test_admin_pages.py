"""An admin creates a user and a project membership in the real browser.

This also proves Dash's renderer sends the CSRF header the guard requires on every
callback (it copies the `portal_csrf` cookie): without it each click would answer 403.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from portal.ui.ids import Account, Admin, Shell
from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _by_id(driver, component: str):  # type: ignore[no-untyped-def]
    return driver.find_element(By.ID, str(component))


def _pick(driver, dropdown: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Choose the option `text` in a dcc.Dropdown: open it, click the option."""
    _by_id(driver, dropdown).click()

    def option(d):  # type: ignore[no-untyped-def]
        for element in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option"):
            if element.is_displayed() and element.text.strip() == text:
                return element
        return None

    WebDriverWait(driver, 10).until(option).click()
    WebDriverWait(driver, 10).until(
        lambda d: (
            not any(
                e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
            )
        )
    )


def _message(driver, component: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    WebDriverWait(driver, 30).until(lambda d: expected in _by_id(d, component).text)


def test_admin_creates_a_user_and_adds_them_to_a_project(  # type: ignore[no-untyped-def]
    live_server: str, browser
) -> None:
    driver = browser
    driver.get(live_server + "/login")
    driver.delete_all_cookies()
    driver.get(live_server + "/login?next=/admin/users")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, str(Admin.CREATE_USER)))
    # Admins get an Admin link in the nav.
    assert driver.find_elements(By.CSS_SELECTOR, f"#{Shell.NAV} a[href='/admin/users']")

    _by_id(driver, Admin.NEW_USERNAME).send_keys("browser-carol")
    _by_id(driver, Admin.NEW_PASSWORD).send_keys(PASSWORD)
    _pick(driver, Admin.NEW_ROLE, "expert")
    _by_id(driver, Admin.CREATE_USER).click()
    _message(driver, Admin.USER_MESSAGE, "Created browser-carol.")
    assert "browser-carol" in _by_id(driver, Admin.USER_TABLE).text
    driver.save_screenshot(str(ARTIFACTS / "admin-users.png"))

    driver.find_element(By.CSS_SELECTOR, "a.admin-tab[href='/admin/projects']").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, str(Admin.ADD_MEMBER)))
    _pick(driver, Admin.PROJECT, "demo")
    _pick(driver, Admin.MEMBER, "browser-carol")
    _pick(driver, Admin.MEMBER_ROLE, "lead")
    _by_id(driver, Admin.ADD_MEMBER).click()
    _message(driver, Admin.PROJECT_MESSAGE, "Member added.")
    assert "browser-carol (lead)" in _by_id(driver, Admin.PROJECT_TABLE).text
    driver.save_screenshot(str(ARTIFACTS / "admin-projects.png"))

    # The new user changes their own password; this window stays signed in.
    driver.find_element(By.ID, "logout-button").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.NAME, "username"))
    driver.get(live_server + "/login?next=/account")
    driver.find_element(By.NAME, "username").send_keys("browser-carol")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, str(Account.CHANGE)))
    assert not driver.find_elements(By.CSS_SELECTOR, f"#{Shell.NAV} a[href='/admin/users']")
    _by_id(driver, Account.CURRENT).send_keys(PASSWORD)
    _by_id(driver, Account.NEW).send_keys("carol's new secret")
    _by_id(driver, Account.REPEAT).send_keys("carol's new secret")
    _by_id(driver, Account.CHANGE).click()
    _message(driver, Account.MESSAGE, "Password changed.")
    driver.save_screenshot(str(ARTIFACTS / "account-password.png"))
    driver.get(live_server + "/admin/users")
    WebDriverWait(driver, 60).until(
        lambda d: "Not allowed" in d.find_element(By.TAG_NAME, "main").text
    )
    assert "browser-carol" in driver.find_element(By.ID, str(Shell.NAV)).text
