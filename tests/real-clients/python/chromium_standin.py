#!/usr/bin/env python3
"""Headless Chromium as the `BROWSER` for MSAL's interactive sign-in, driven with Selenium.

Python's `webbrowser` runs it with the authorization URL and waits for it, so it detaches
first. It then opens the URL in headless Chromium (through /usr/bin/chromedriver: no driver
download), types STANDIN_USER and STANDIN_PASSWORD into the emulator's sign-in page, presses
"Sign in", and waits until the page's own script has posted the answer to the application's
loopback listener. Logs to STANDIN_LOG.
"""

import os
import subprocess
import sys
import time


def log(message):
    path = os.environ.get("STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"chromium: {message}\n")


def sign_in(url):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("acceptInsecureCerts", True)
    binary = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if os.path.exists(binary):
        options.binary_location = binary
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.get(url)
        driver.find_element(By.ID, "i0116").send_keys(os.environ["STANDIN_USER"])
        driver.find_element(By.ID, "i0118").send_keys(os.environ["STANDIN_PASSWORD"])
        driver.find_element(By.ID, "idSIButton9").click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if driver.current_url.startswith("http://localhost") or driver.current_url.startswith("http://127.0.0.1"):
                log(f"delivered to {driver.current_url}")
                return 0
            time.sleep(0.1)
        log(f"stuck at {driver.current_url}")
        return 1
    finally:
        driver.quit()


def main():
    url = sys.argv[-1]
    if "--child" not in sys.argv:
        subprocess.Popen([sys.executable, __file__, "--child", url], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return 0
    try:
        return sign_in(url)
    except Exception as e:  # noqa: BLE001 - a stand-in reports and exits
        log(f"error: {type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
