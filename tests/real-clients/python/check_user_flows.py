#!/usr/bin/env python3
"""Drive the unmodified Python azure-identity user credentials against the emulator's sign-in.

Usage:
    check_user_flows.py --emulator PATH_TO_BINARY [--chromium]

Starts its own emulator on free ports, then signs in with DeviceCodeCredential (approved through
the control plane, through the /devicelogin page, declined), InteractiveBrowserCredential (a
browser stand-in fills the sign-in form as a person would, through `BROWSER`; with --chromium
also headless Chromium driven by Selenium), AuthorizationCodeCredential and
OnBehalfOfCredential (secret and certificate), plus the failures: wrong password, cancel, MFA,
revoked sessions. Tokens are verified against the emulator's JWKS. Ends with "N passed, M failed".
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import browser_standin  # noqa: E402

ARM = "https://management.azure.com/.default"
API = "api://entra-emulator-api/.default"
GRAPH = "https://graph.microsoft.com/User.Read"
TENANT = "11111111-1111-1111-1111-111111111111"
DEVELOPER_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
WEB_APP = "abababab-abab-4bab-8bab-abababababab"
WEB_APP_SECRET = "emulator-web-app-secret"
MIDDLE_TIER = "99999999-9999-9999-9999-999999999999"
MIDDLE_TIER_SECRET = "emulator-middle-tier-secret"
USER = ("emulator.user@emulator.onmicrosoft.com", "emulator-user-password", "c0c0c0c0-0000-4000-8000-000000000001")
MFA_USER = ("emulator.mfa@emulator.onmicrosoft.com", "emulator-mfa-password", "424242")
GUEST = ("partner.guest@emulator-partner.onmicrosoft.com", "partner-guest-password")


class Emulator:
    def __init__(self, binary, workdir):
        self.ready_path = os.path.join(workdir, "ready.json")
        self.log = open(os.path.join(workdir, "emulator.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "--https-port", "0", "--http-port", "0", "--service-fabric-port", "0",
             "--state-dir", os.path.join(workdir, "state"), "--ready-file", self.ready_path],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not os.path.exists(self.ready_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise SystemExit(f"the emulator did not become ready; see {self.log.name}")
            time.sleep(0.05)
        with open(self.ready_path, encoding="utf-8") as f:
            self.ready = json.load(f)
        self.url = self.ready["https_url"]
        self.ca = self.ready["ca_cert_path"]
        self.state_dir = os.path.join(workdir, "state")

    def control(self, method, path, body=None):
        import requests
        # Writes to the control plane are JSON, even without a body (a web page cannot send that).
        if method != "GET" and body is None:
            body = {}
        response = requests.request(method, f"{self.url}/_emulator{path}", json=body, verify=self.ca, timeout=10)
        return response

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)


def claims_of(emu, token, audience):
    """Verifies a token against the emulator's JWKS; returns its claims."""
    import jwt
    import requests
    unverified = jwt.decode(token, options={"verify_signature": False})
    tid = unverified["tid"]
    jwks = requests.get(f"{emu.url}/{tid}/discovery/v2.0/keys", verify=emu.ca, timeout=10).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
    issuer = f"https://sts.windows.net/{tid}/" if unverified.get("ver") == "1.0" else f"{emu.url}/{tid}/v2.0"
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer)


def expect_user(claims, upn, client):
    name = claims.get("upn") or claims.get("preferred_username")
    caller = claims.get("appid") or claims.get("azp")
    if name != upn or caller != client or claims.get("idtyp") != "user":
        raise AssertionError(f"token is for {name} via {caller} ({claims.get('idtyp')}), expected {upn} via {client}")


def common(emu):
    return {"authority": emu.url, "disable_instance_discovery": True}


def approve_callback(emu, user, decline=False):
    def callback(verification_uri, user_code, expires_on):
        if decline:
            r = emu.control("POST", "/device-codes/decline", {"user_code": user_code})
        else:
            r = emu.control("POST", "/device-codes/approve", {"user_code": user_code, "user": user})
        if r.status_code != 200:
            raise AssertionError(f"control plane answered {r.status_code}: {r.text}")
    return callback


def page_callback(emu, user, password):
    """A person reading the prompt: opens the page, types the code, signs in."""
    def callback(verification_uri, user_code, expires_on):
        import requests
        session = requests.Session()
        session.verify = emu.ca
        page = session.get(verification_uri, timeout=10)
        form = browser_standin.forms_of(page.text)[0]
        target = urllib.parse.urljoin(page.url, form["action"])
        signin = session.post(target, data={"otc": user_code}, allow_redirects=False, timeout=10)
        form = browser_standin.forms_of(signin.text)[0]
        fields = dict(form["fields"], loginfmt=user, passwd=password)
        done = session.post(urllib.parse.urljoin(signin.url, form["action"]), data=fields, timeout=10)
        if "You have signed in" not in done.text:
            raise AssertionError(f"the device login page did not sign in: {done.status_code} {done.text[:300]}")
    return callback


def case_device_code_control_plane(emu):
    from azure.identity import DeviceCodeCredential
    cred = DeviceCodeCredential(tenant_id="organizations", prompt_callback=approve_callback(emu, USER[0]), **common(emu))
    claims = claims_of(emu, cred.get_token(ARM).token, "https://management.azure.com")
    expect_user(claims, USER[0], DEVELOPER_CLIENT)
    # The second scope comes silently from the refresh token: no new device code.
    before = len(emu.control("GET", "/device-codes").json()["device_codes"])
    claims_of(emu, cred.get_token(API).token, MIDDLE_TIER)
    if before:
        raise AssertionError("a device code was left pending")
    return f"{claims['upn']} tid={claims['tid']}"


def case_device_code_page(emu):
    from azure.identity import DeviceCodeCredential
    cred = DeviceCodeCredential(tenant_id=TENANT, prompt_callback=page_callback(emu, *USER[:2]), **common(emu))
    claims = claims_of(emu, cred.get_token(API).token, MIDDLE_TIER)
    expect_user(claims, USER[0], DEVELOPER_CLIENT)
    return f"{claims['preferred_username']} via /devicelogin"


def case_device_code_guest(emu):
    from azure.identity import DeviceCodeCredential
    cred = DeviceCodeCredential(tenant_id=TENANT, prompt_callback=approve_callback(emu, GUEST[0]), **common(emu))
    claims = claims_of(emu, cred.get_token(ARM).token, "https://management.azure.com")
    if claims["tid"] != TENANT or "idp" not in claims:
        raise AssertionError(f"guest token has tid={claims['tid']} idp={claims.get('idp')}")
    return f"guest in {claims['tid']}, idp={claims['idp']}"


def case_device_code_declined(emu):
    from azure.identity import DeviceCodeCredential
    cred = DeviceCodeCredential(tenant_id=TENANT, prompt_callback=approve_callback(emu, None, decline=True), **common(emu))
    cred.get_token(ARM)


def use_browser(script):
    """Makes `script` the browser MSAL's `webbrowser.open` starts, as a `BROWSER` setting
    would (registered as the preferred browser: `webbrowser` reads `BROWSER` only once)."""
    import webbrowser
    command = webbrowser.GenericBrowser([sys.executable, os.path.join(HERE, script), "%s"])
    webbrowser.register(script, None, command, preferred=True)


def standin_env(emu, user, password, mfa=None, action="sign_in"):
    use_browser("browser_standin.py")
    os.environ.update(STANDIN_USER=user, STANDIN_PASSWORD=password, STANDIN_MFA_CODE=mfa or "",
                      STANDIN_ACTION=action, STANDIN_CA=emu.ca)


def interactive(emu, scope=ARM, timeout=20, **kwargs):
    from azure.identity import InteractiveBrowserCredential
    cred = InteractiveBrowserCredential(tenant_id="organizations", timeout=timeout, **common(emu), **kwargs)
    return cred, cred.get_token(scope)


def case_interactive_browser(emu):
    standin_env(emu, *USER[:2])
    cred, token = interactive(emu)
    claims = claims_of(emu, token.token, "https://management.azure.com")
    expect_user(claims, USER[0], DEVELOPER_CLIENT)
    record = cred.authenticate(scopes=[ARM])
    if record.username != USER[0] or record.home_account_id != f"{USER[2]}.{TENANT}":
        raise AssertionError(f"AuthenticationRecord: {record.serialize()}")
    return f"{claims['upn']}; record {record.home_account_id}"


def case_interactive_browser_mfa(emu):
    standin_env(emu, MFA_USER[0], MFA_USER[1], MFA_USER[2])
    _, token = interactive(emu, API)
    claims = claims_of(emu, token.token, MIDDLE_TIER)
    expect_user(claims, MFA_USER[0], DEVELOPER_CLIENT)
    return f"{claims['preferred_username']} after the verification code"


def case_interactive_browser_cancel(emu):
    standin_env(emu, *USER[:2], action="cancel")
    interactive(emu)


def case_interactive_browser_wrong_password(emu):
    # The page says why (AADSTS50126) and stays; the person gives up, the credential times out.
    query = urllib.parse.urlencode({"client_id": DEVELOPER_CLIENT, "response_type": "code", "redirect_uri": "http://localhost:8400",
                                    "scope": ARM, "response_mode": "form_post"})
    page = browser_standin.drive(f"{emu.url}/organizations/oauth2/v2.0/authorize?{query}", USER[0], "not-the-password", ca=emu.ca, deliver=False)
    if page.status_code != 400 or "AADSTS50126" not in page.text:
        raise AssertionError(f"the page answered {page.status_code} without AADSTS50126")
    standin_env(emu, USER[0], "not-the-password")
    interactive(emu, timeout=4)


def case_interactive_browser_chromium(emu):
    use_browser("chromium_standin.py")
    os.environ.update(STANDIN_USER=USER[0], STANDIN_PASSWORD=USER[1])
    _, token = interactive(emu, timeout=60)
    claims = claims_of(emu, token.token, "https://management.azure.com")
    expect_user(claims, USER[0], DEVELOPER_CLIENT)
    # The credential answers as soon as the form post arrives; Chromium logs a moment later.
    deadline = time.monotonic() + 20
    while True:
        with open(os.environ["STANDIN_LOG"], encoding="utf-8") as f:
            if "chromium: delivered" in f.read():
                break
        if time.monotonic() > deadline:
            raise AssertionError("the token came without Chromium delivering the answer")
        time.sleep(0.1)
    return f"{claims['upn']} through headless Chromium"


def authorization_code(emu, redirect_uri="http://localhost:8765/callback"):
    """The code a person's browser would bring back to the web app (response_mode=query)."""
    query = urllib.parse.urlencode({
        "client_id": WEB_APP, "response_type": "code", "redirect_uri": redirect_uri,
        "scope": f"{GRAPH} openid offline_access", "state": "xyz", "response_mode": "query",
    })
    answer = browser_standin.drive(f"{emu.url}/{TENANT}/oauth2/v2.0/authorize?{query}", *USER[:2], ca=emu.ca, deliver=False)
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))
    if params.get("state") != "xyz":
        raise AssertionError(f"state not returned: {params}")
    return params["code"], redirect_uri


def case_authorization_code(emu):
    from azure.identity import AuthorizationCodeCredential
    code, redirect_uri = authorization_code(emu)
    cred = AuthorizationCodeCredential(TENANT, WEB_APP, code, redirect_uri, client_secret=WEB_APP_SECRET, **common(emu))
    claims = claims_of(emu, cred.get_token(GRAPH).token, "https://graph.microsoft.com")
    expect_user(claims, USER[0], WEB_APP)
    if claims.get("appidacr") != "1" or claims.get("scp") != "User.Read":
        raise AssertionError(f"appidacr={claims.get('appidacr')} scp={claims.get('scp')}")
    return f"{claims['upn']} scp={claims['scp']}"


def case_authorization_code_reused(emu):
    from azure.identity import AuthorizationCodeCredential
    code, redirect_uri = authorization_code(emu)
    AuthorizationCodeCredential(TENANT, WEB_APP, code, redirect_uri, client_secret=WEB_APP_SECRET, **common(emu)).get_token(GRAPH)
    AuthorizationCodeCredential(TENANT, WEB_APP, code, redirect_uri, client_secret=WEB_APP_SECRET, **common(emu)).get_token(GRAPH)


def user_token_for_middle_tier(emu):
    from azure.identity import DeviceCodeCredential
    cred = DeviceCodeCredential(tenant_id=TENANT, prompt_callback=approve_callback(emu, USER[0]), **common(emu))
    return cred.get_token(API).token


def case_on_behalf_of(emu):
    from azure.identity import OnBehalfOfCredential
    assertion = user_token_for_middle_tier(emu)
    cred = OnBehalfOfCredential(TENANT, MIDDLE_TIER, client_secret=MIDDLE_TIER_SECRET, user_assertion=assertion, **common(emu))
    claims = claims_of(emu, cred.get_token(GRAPH).token, "https://graph.microsoft.com")
    expect_user(claims, USER[0], MIDDLE_TIER)
    if claims["oid"] != USER[2]:
        raise AssertionError(f"oid {claims['oid']}")
    return f"{claims['upn']} via the middle tier"


def case_on_behalf_of_certificate(emu):
    from azure.identity import OnBehalfOfCredential
    assertion = user_token_for_middle_tier(emu)
    with open(os.path.join(emu.state_dir, "certs", "middle-tier.pem"), "rb") as f:
        pem = f.read()
    cred = OnBehalfOfCredential(TENANT, MIDDLE_TIER, client_certificate=pem, user_assertion=assertion, **common(emu))
    claims = claims_of(emu, cred.get_token(ARM).token, "https://management.azure.com")
    expect_user(claims, USER[0], MIDDLE_TIER)
    return f"{claims['upn']} appidacr={claims['appidacr']}"


def case_on_behalf_of_wrong_audience(emu):
    from azure.identity import DeviceCodeCredential, OnBehalfOfCredential
    arm = DeviceCodeCredential(tenant_id=TENANT, prompt_callback=approve_callback(emu, USER[0]), **common(emu)).get_token(ARM).token
    OnBehalfOfCredential(TENANT, MIDDLE_TIER, client_secret=MIDDLE_TIER_SECRET, user_assertion=arm, **common(emu)).get_token(GRAPH)


def case_revoked_sessions(emu):
    import requests
    from azure.identity import DeviceCodeCredential
    cache = __import__("msal").TokenCache()
    cred = DeviceCodeCredential(tenant_id=TENANT, prompt_callback=approve_callback(emu, USER[0]), _cache=cache, **common(emu))
    cred.get_token(ARM)
    if emu.control("POST", f"/users/{USER[0]}/revoke-sessions").status_code != 200:
        raise AssertionError("revoke-sessions failed")
    # MSAL tries the refresh token (which the revocation voided), then falls back to a new
    # device code, which nobody approves here.
    cred._prompt_callback = approve_callback(emu, None, decline=True)
    try:
        cred.get_token(API)
        raise AssertionError("got a token after the sessions were revoked")
    except Exception as e:  # noqa: BLE001
        if "AADSTS70000" not in str(e):
            raise
    log = emu.control("GET", "/requests").json()
    refreshes = [r for r in log if dict(r["form"]).get("grant_type") == "refresh_token"]
    if not refreshes or refreshes[-1]["status"] != 400:
        raise AssertionError(f"no refused refresh in the request log: {refreshes[-1:]}")
    # The refused grant, sent as MSAL sent it, says why.
    rt = next(iter(cache.find("RefreshToken")))["secret"]
    answer = requests.post(f"{emu.url}/{TENANT}/oauth2/v2.0/token", verify=emu.ca, timeout=10, data={
        "grant_type": "refresh_token", "client_id": DEVELOPER_CLIENT, "refresh_token": rt, "scope": API})
    raise AssertionError(answer.json()["error_description"])


# name -> (function, expected error fragment or None)
CASES = {
    "device_code_control_plane": (case_device_code_control_plane, None),
    "device_code_page": (case_device_code_page, None),
    "device_code_guest": (case_device_code_guest, None),
    "device_code_declined": (case_device_code_declined, "authorization_declined"),
    "interactive_browser": (case_interactive_browser, None),
    "interactive_browser_mfa": (case_interactive_browser_mfa, None),
    "interactive_browser_cancel": (case_interactive_browser_cancel, "AADSTS65004"),
    "interactive_browser_wrong_password": (case_interactive_browser_wrong_password, "Timed out"),
    "authorization_code": (case_authorization_code, None),
    "authorization_code_reused": (case_authorization_code_reused, "AADSTS54005"),
    "on_behalf_of": (case_on_behalf_of, None),
    "on_behalf_of_certificate": (case_on_behalf_of_certificate, None),
    "on_behalf_of_wrong_audience": (case_on_behalf_of_wrong_audience, "AADSTS500131"),
    "revoked_sessions": (case_revoked_sessions, "AADSTS50173"),
}


def run_cases(emu, cases, width=36):
    """Runs each case (name -> (function, expected error fragment or None)); prints one line
    per case and returns (passed, failed)."""
    passed = failed = 0
    for name, (run, expect) in cases.items():
        started = time.monotonic()
        try:
            detail = run(emu) or "got a token"
            good = expect is None
            if not good:
                detail = f"unexpectedly succeeded ({detail})"
        except Exception as e:  # noqa: BLE001 - report every failure as data
            detail = f"{type(e).__name__}: {e}".replace("\n", " ").replace("\r", "")[:400]
            good = expect is not None and expect in detail
        passed += good
        failed += not good
        print(f"{'PASS' if good else 'FAIL'} {name:{width}} {time.monotonic() - started:5.2f}s  {detail}")
    return passed, failed


def run_check(binary, prefix, cases, banner, trust_ca=True):
    """Starts the emulator in a new folder, prints `banner(emu)`, runs `cases` and stops it;
    the exit code. With `trust_ca`, this process's `requests` trusts the emulator's CA."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    emu = Emulator(binary, workdir)
    if trust_ca:
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            os.environ[name] = emu.ca
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
    try:
        print(banner(emu))
        passed, failed = run_cases(emu, cases)
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        emu.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--chromium", action="store_true", help="also sign in through headless Chromium")
    args = parser.parse_args()
    cases = dict(CASES)
    if args.chromium:
        cases["interactive_browser_chromium"] = (case_interactive_browser_chromium, None)
    workdir = tempfile.mkdtemp(prefix="emu-py-users-")
    emu = Emulator(args.emulator, workdir)
    log = os.path.join(workdir, "standin.log")
    os.environ["STANDIN_LOG"] = log
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        os.environ[name] = emu.ca
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
    import azure.identity
    import msal
    print(f"azure-identity {azure.identity.__version__} (msal {msal.__version__}) against {emu.url}")
    try:
        passed, failed = run_cases(emu, cases)
        if failed and os.path.exists(log):
            print(open(log, encoding="utf-8").read()[-3000:])
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        emu.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
