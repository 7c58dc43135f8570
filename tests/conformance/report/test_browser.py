"""The HTML report and the comparison page in a real headless Chromium (Debian's, via WebDriver): asserted
through the DOM, not pixels. A screenshot of each page is kept under ``reports/browser/`` as a CI artifact.

What a reader needs first is visible without scrolling past the summary (verdict, the failing check's
requirement and token diff); the filters work with JavaScript; with JavaScript off the page is still whole;
and the page makes no network request at all.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from report_samples import build_report, simple_result, stock_vllm_results

from conformance.report import Report
from conformance.report.compare import Run, render_compare_html
from conformance.report.html import render_html

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "reports" / "browser"
UNAVAILABLE = REPO / ".cache" / "browser-unavailable"

pytestmark = pytest.mark.browser

# a realistic length: the failing stock-vLLM sample among forty passing checks
MANY = [simple_result(f"E{i}", f"endpoint/check-{i}", "pass") for i in range(30, 70)]


def _chromium():
    if UNAVAILABLE.is_file():
        pytest.skip(UNAVAILABLE.read_text().strip())
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("no headless Chromium: run `make browser` (installs Debian's chromium and chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def open_page():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = _chromium()
    drivers = []

    def open_(path: Path, *, javascript: bool = True):
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                    "--disable-dev-shm-usage"):
            options.add_argument(arg)
        if not javascript:
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        drivers.append(driver)
        driver.get(path.as_uri())
        return driver
    yield open_
    for driver in drivers:
        driver.quit()


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _top(driver, element) -> float:
    return driver.execute_script("return arguments[0].getBoundingClientRect().top + window.scrollY;", element)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    failing = Report.from_dict(build_report(stock_vllm_results() + MANY))
    passing = Report.from_dict(build_report([simple_result(r["check_id"], r["name"], "pass")
                                             for r in stock_vllm_results() + MANY]))
    for name, report in (("stock-vllm", failing), ("reference", passing)):
        (root / name).mkdir()
        (root / name / "report.html").write_text(render_html(report))
    compare = root / "compare.html"
    compare.write_text(render_compare_html([Run("reference", passing, "reference/report.html"),
                                            Run("stock-vllm", failing, "stock-vllm/report.html")]))
    return {"report": root / "stock-vllm" / "report.html", "compare": compare}


def test_report_shows_verdict_and_first_failure_before_the_check_list(open_page, pages):
    from selenium.webdriver.common.by import By

    d = open_page(pages["report"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(SHOTS / "report.png"))
    verdict = d.find_element(By.ID, "verdict")
    assert verdict.text == "FAIL" and verdict.is_displayed()
    assert _top(d, verdict) < d.execute_script("return window.innerHeight;")  # in the first screen
    failure = d.find_element(By.CSS_SELECTOR, 'details.detail[data-outcome="fail"]')
    requirement = failure.find_element(By.CSS_SELECTOR, ".requirement")
    diff = failure.find_element(By.CSS_SELECTOR, "table.tokens")
    assert failure.get_attribute("open") is not None and requirement.is_displayed() and diff.is_displayed()
    assert "survives verbatim" in requirement.text
    assert d.find_element(By.CSS_SELECTOR, "td.tok.first").is_displayed()  # the first differing token
    checks = d.find_element(By.ID, "checks")
    assert _top(d, requirement) < _top(d, checks) and _top(d, diff) < _top(d, checks)  # before the 48-row list
    assert all(url.startswith(("file:", "data:", "about:")) for url in _requests(d)), _requests(d)


def test_report_filters_work_with_javascript(open_page, pages):
    from selenium.webdriver.common.by import By

    d = open_page(pages["report"])
    rows = d.find_elements(By.CSS_SELECTOR, "tr.check")
    d.find_element(By.CSS_SELECTOR, 'button[data-filter="fail"]').click()
    shown = [r.get_attribute("data-check") for r in rows if r.is_displayed()]
    assert shown == ["M3"]
    d.find_element(By.CSS_SELECTOR, 'button[data-filter="all"]').click()
    assert all(r.is_displayed() for r in rows)


def test_report_is_whole_without_javascript(open_page, pages):
    from selenium.webdriver.common.by import By

    d = open_page(pages["report"], javascript=False)
    assert d.execute_script is not None  # (WebDriver itself still runs; the page's scripts do not)
    rows = d.find_elements(By.CSS_SELECTOR, "tr.check")
    assert len(rows) == len(stock_vllm_results() + MANY) and all(r.is_displayed() for r in rows)
    failure = d.find_element(By.CSS_SELECTOR, 'details.detail[data-outcome="fail"]')
    assert failure.find_element(By.CSS_SELECTOR, "table.tokens").is_displayed()


def test_comparison_page_links_runs_and_filters_checks_that_differ(open_page, pages):
    from selenium.webdriver.common.by import By

    d = open_page(pages["compare"])
    d.save_screenshot(str(SHOTS / "compare.png"))
    cell = d.find_element(By.CSS_SELECTOR, 'tr[data-check="M3"] td.o-fail a')
    assert cell.get_attribute("href").endswith("stock-vllm/report.html#r5")
    rows = d.find_elements(By.CSS_SELECTOR, "#compare tbody tr")
    d.find_element(By.ID, "only-differing").click()
    shown = sorted(r.get_attribute("data-check") for r in rows if r.is_displayed())
    assert shown == ["E6", "E9", "M24", "M3"]  # the outcomes the two runs disagree on
    assert all(url.startswith(("file:", "data:", "about:")) for url in _requests(d))
    cell.click()  # the link lands on the failing check's evidence in the run's own report
    assert d.current_url.endswith("#r5") and d.find_element(By.ID, "r5").is_displayed()


@pytest.mark.vllm
def test_the_demo_judges_both_servers_and_its_pages_read_well(open_page, reference_server_qwen3, stock_vllm_qwen3,
                                                              tiny_qwen3_dir, tmp_path):
    """What ``make demo`` writes, on the session's two real servers (same fixture): the reference passes, stock
    vLLM fails with one sentence per check, and the pages show it in a browser."""
    from selenium.webdriver.common.by import By

    from gym_conformance.demo import judge

    result = judge({"reference": reference_server_qwen3, "stock-vllm": stock_vllm_qwen3}, tiny_qwen3_dir, tmp_path,
                   quiet=True)
    assert result.codes == {"reference": 0, "stock-vllm": 1}, result
    assert any(line.startswith("M3 (") and "re-tokenized" in line for line in result.stock_failures), result
    SHOTS.mkdir(parents=True, exist_ok=True)
    d = open_page(tmp_path / "stock-vllm" / "report.html")
    d.save_screenshot(str(SHOTS / "demo-stock-vllm.png"))
    assert d.find_element(By.ID, "verdict").text == "FAIL"
    failure = d.find_element(By.CSS_SELECTOR, 'details.detail[data-outcome="fail"]')
    requirement = failure.find_element(By.CSS_SELECTOR, ".requirement")
    assert requirement.is_displayed() and _top(d, requirement) < _top(d, d.find_element(By.ID, "checks"))
    assert d.find_elements(By.CSS_SELECTOR, 'details.detail[data-check="M3"] table.tokens')
    assert all(url.startswith(("file:", "data:", "about:")) for url in _requests(d))
    d = open_page(result.compare)
    d.save_screenshot(str(SHOTS / "demo-compare.png"))
    m3 = d.find_element(By.CSS_SELECTOR, 'tr[data-check="M3"]')
    assert m3.find_elements(By.CSS_SELECTOR, "td.o-pass") and m3.find_elements(By.CSS_SELECTOR, "td.o-fail a")
