#!/usr/bin/env python3
"""A browser stand-in that signs in on the emulator's pages the way a person would.

As a `BROWSER` command (Python's `webbrowser`, hence MSAL's interactive sign-in, runs it with
the authorization URL): it detaches, opens the URL, types the user name and password (and the
verification code if asked), presses "Sign in" (or "Cancel"), and delivers the answer to the
application's loopback redirect URI — following a redirect, or submitting the `form_post` form
as a browser's script would.

Settings come from the environment: STANDIN_USER, STANDIN_PASSWORD, STANDIN_MFA_CODE,
STANDIN_ACTION (`sign_in`, default, or `cancel`), STANDIN_CA (the emulator's CA file) and
STANDIN_LOG (a file to log each step to).

Importable: `drive(url, ...)` walks the pages and returns the last response, without
delivering it when `deliver=False` (to read a code from a redirect).
"""

import html.parser
import os
import subprocess
import sys
import urllib.parse

import requests


class Forms(html.parser.HTMLParser):
    """The forms of a page: action, method and their fields (inputs with a name)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "method": (attrs.get("method") or "get").lower(), "fields": {}, "buttons": {}})
        elif tag == "input" and self.forms:
            name = attrs.get("name")
            kind = (attrs.get("type") or "text").lower()
            if kind == "submit":
                self.forms[-1]["buttons"][attrs.get("id") or name or ""] = (name, attrs.get("value", ""))
            elif name:
                self.forms[-1]["fields"][name] = attrs.get("value", "")


def forms_of(text):
    parser = Forms()
    parser.feed(text)
    return parser.forms


def log(message):
    path = os.environ.get("STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(message + "\n")


def is_emulator(url, origin):
    return url.startswith(origin)


def drive(url, user, password, mfa_code=None, action="sign_in", ca=None, deliver=True, session=None):
    """Walks the sign-in pages from `url`. Returns the final response (or, with
    deliver=False, the first answer addressed to the application: a redirect or a form_post page)."""
    session = session or requests.Session()
    if ca:
        session.verify = ca
    parts = urllib.parse.urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    response = session.get(url, allow_redirects=False, timeout=30)
    for _ in range(10):
        log(f"{response.status_code} {response.url}")
        if response.is_redirect:
            target = urllib.parse.urljoin(response.url, response.headers["location"])
            if not is_emulator(target, origin) and not deliver:
                return response
            response = session.get(target, allow_redirects=False, timeout=30)
            continue
        forms = forms_of(response.text)
        if not forms:
            return response
        form = forms[0]
        target = urllib.parse.urljoin(response.url, form["action"])
        fields = dict(form["fields"])
        if not is_emulator(target, origin):
            # The form_post answer: what the page's script submits.
            if not deliver:
                return response
            response = session.post(target, data=fields, allow_redirects=False, timeout=30)
            continue
        if action == "cancel" and "idBtn_Back" in form["buttons"]:
            name, value = form["buttons"]["idBtn_Back"]
            fields[name] = value
        elif "loginfmt" in fields:
            fields["loginfmt"] = user
            fields["passwd"] = password
        elif "otc" in fields and "flowToken" in fields:
            fields["otc"] = mfa_code or ""
        else:
            return response
        response = session.post(target, data=fields, allow_redirects=False, timeout=30)
    return response


def main():
    url = sys.argv[-1]
    if "--child" not in sys.argv:
        # `webbrowser` waits for the command; the application answers only after it returns.
        subprocess.Popen([sys.executable, __file__, "--child", url], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return 0
    try:
        final = drive(
            url,
            os.environ.get("STANDIN_USER", ""),
            os.environ.get("STANDIN_PASSWORD", ""),
            os.environ.get("STANDIN_MFA_CODE"),
            os.environ.get("STANDIN_ACTION", "sign_in"),
            os.environ.get("STANDIN_CA"),
        )
        log(f"done: {final.status_code} {final.url}")
    except Exception as e:  # noqa: BLE001 - a stand-in reports and exits
        log(f"error: {type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
