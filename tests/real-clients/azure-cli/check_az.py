#!/usr/bin/env python3
"""Drive the real, unmodified Azure CLI (`az`, e.g. the newest from PyPI) against the emulator.

Usage:
    check_az.py --emulator PATH_TO_BINARY --az PATH_TO_AZ

Each case runs in its own AZURE_CONFIG_DIR, prepared as a user would: `az cloud register` with
the emulator's Resource Manager (`arm_url` in the ready file; the CLI reads the cloud's login
endpoint and audiences from its metadata), `az cloud set`, and
`az config set core.instance_discovery=false` (MSAL would otherwise ask
login.microsoftonline.com). Then `az login` as a service principal (secret, certificate,
federated token), as the seeded user (device code, approved through the control plane), and
with managed identity (IMDS, App Service); `az account list/show`; `az account get-access-token`
for Resource Manager and Key Vault, each token verified against the emulator's JWKS; a wrong
secret shows the AADSTS text.

Transparent mode, separately: no cloud registration and no configuration at all, only the ready
file's `transparent` profile (HTTPS_PROXY/HTTP_PROXY to the emulator's proxy port,
REQUESTS_CA_BUNDLE with the transparent-mode CA). The CLI talks to login.microsoftonline.com,
management.azure.com and 169.254.169.254 as it would in Azure, and the emulator answers: a
service principal with a secret (and a wrong one), the seeded user with `az login -u -p` (MSAL's
userrealm lookup included), managed identity through IMDS.

Debian's azure-cli 2.45 runs the transparent cases only (`--only transparent_`): it cannot stop
MSAL's instance discovery, and without managed-identity variables it would go to IMDS itself.

Exits non-zero when any case fails; ends with "N passed, M failed".
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from check_user_flows import claims_of, run_check  # noqa: E402

TENANT = "11111111-1111-1111-1111-111111111111"
SECRET_APP = ("22222222-2222-2222-2222-222222222222", "emulator-client-secret")
CERT_APP = "33333333-3333-3333-3333-333333333333"
WORKLOAD_APP = "44444444-4444-4444-4444-444444444444"
USER = "emulator.user@emulator.onmicrosoft.com"
SUBSCRIPTION = "cccccccc-cccc-cccc-cccc-cccccccccccc"
SYSTEM_ASSIGNED = "a0a0a0a0-0000-4000-8000-000000000001"


class Az:
    """The CLI with its own configuration folder, pointed at the emulator's cloud."""

    def __init__(self, binary, emu, workdir, name, profile=None, transparent=False):
        self.binary = binary
        self.emu = emu
        self.env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        self.env.update(emu.ready["profiles"].get(profile, {}) if profile else {})
        self.env.update(
            AZURE_CONFIG_DIR=os.path.join(workdir, name),
            REQUESTS_CA_BUNDLE=emu.ca,
            AZURE_CORE_COLLECT_TELEMETRY="false",
            AZURE_CORE_NO_COLOR="true",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        if transparent:
            # Only the proxy and CA trust: the CLI's own AzureCloud, untouched.
            profile = emu.ready["profiles"]["transparent"]
            for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "REQUESTS_CA_BUNDLE"):
                self.env[name] = profile[name]
            return
        self.run("cloud", "register", "-n", "EntraEmulator", "--endpoint-resource-manager", emu.ready["arm_url"])
        self.run("cloud", "set", "-n", "EntraEmulator")
        self.run("config", "set", "core.instance_discovery=false")

    def run(self, *args, check=True):
        result = subprocess.run([self.binary, *args, "--only-show-errors"], env=self.env,
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"az {' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-1500:]}")
        return result

    def json(self, *args):
        return json.loads(self.run(*args, "-o", "json").stdout)


def signed_in(az, emu, who, kind):
    """`az account list/show` and tokens for ARM and Key Vault, verified."""
    accounts = az.json("account", "list")
    assert [a["id"] for a in accounts] == [SUBSCRIPTION], accounts
    account = az.json("account", "show")
    assert account["user"] == {"name": who, "type": kind}, account["user"]
    arm = az.json("account", "get-access-token")
    claims = claims_of(emu, arm["accessToken"], ["https://management.core.windows.net/", "https://management.azure.com/"])
    vault = az.json("account", "get-access-token", "--resource", "https://vault.azure.net")
    claims_of(emu, vault["accessToken"], "https://vault.azure.net")
    return f"{kind} {who}: subscription {account['name']!r}, ARM and Key Vault tokens verified (oid {claims['oid']})"


def case_secret(az_binary, emu, work):
    az = Az(az_binary, emu, work, "secret")
    az.run("login", "--service-principal", "-u", SECRET_APP[0], "-p", SECRET_APP[1], "--tenant", TENANT)
    return signed_in(az, emu, SECRET_APP[0], "servicePrincipal")


def login_with_wrong_secret(az):
    """A service-principal login with a wrong secret: the error az shows is the case's failure,
    which the case table expects to carry Entra's AADSTS code."""
    result = az.run("login", "--service-principal", "-u", SECRET_APP[0], "-p", "not-the-secret",
                    "--tenant", TENANT, check=False)
    if result.returncode == 0:
        return "signed in with a wrong secret"
    raise AssertionError(result.stderr.strip().replace("\n", " ")[:300])


def case_wrong_secret(az_binary, emu, work):
    return login_with_wrong_secret(Az(az_binary, emu, work, "wrong-secret"))


def case_certificate(az_binary, emu, work):
    az = Az(az_binary, emu, work, "certificate")
    pem = emu.ready["profiles"]["client_certificate"]["AZURE_CLIENT_CERTIFICATE_PATH"]
    az.run("login", "--service-principal", "-u", CERT_APP, "--certificate", pem, "--tenant", TENANT)
    return signed_in(az, emu, CERT_APP, "servicePrincipal")


def case_federated(az_binary, emu, work):
    az = Az(az_binary, emu, work, "federated")
    path = emu.ready["profiles"]["workload_identity"]["AZURE_FEDERATED_TOKEN_FILE"]
    with open(path, encoding="utf-8") as f:
        assertion = f.read().strip()
    az.run("login", "--service-principal", "-u", WORKLOAD_APP, "--federated-token", assertion, "--tenant", TENANT)
    return signed_in(az, emu, WORKLOAD_APP, "servicePrincipal")


def case_device_code(az_binary, emu, work):
    """`az login --use-device-code`, the code approved through the control plane."""
    az = Az(az_binary, emu, work, "device-code")
    approved = []

    def approve():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not approved:
            codes = emu.control("GET", "/device-codes").json()["device_codes"]
            if codes:
                r = emu.control("POST", "/device-codes/approve", {"user_code": codes[0]["user_code"], "user": USER})
                approved.append(r.status_code)
            time.sleep(0.2)

    approver = threading.Thread(target=approve)
    approver.start()
    try:
        az.run("login", "--use-device-code", "--tenant", TENANT)
    finally:
        approver.join()
    assert approved == [200], approved
    return signed_in(az, emu, USER, "user")


def case_managed_identity(profile):
    def run(az_binary, emu, work):
        az = Az(az_binary, emu, work, f"identity-{profile}", profile=profile)
        az.run("login", "--identity")
        account = az.json("account", "show")
        token = az.json("account", "get-access-token")
        claims = claims_of(emu, token["accessToken"], ["https://management.core.windows.net/", "https://management.azure.com/"])
        assert claims["appid"] == SYSTEM_ASSIGNED, claims["appid"]
        return f"{account['user']['name']} ({account['user']['assignedIdentityInfo']}): ARM token verified"
    return run


def case_transparent_secret(az_binary, emu, work):
    az = Az(az_binary, emu, work, "transparent-secret", transparent=True)
    az.run("login", "--service-principal", "-u", SECRET_APP[0], "-p", SECRET_APP[1], "--tenant", TENANT)
    assert az.json("cloud", "show")["name"] == "AzureCloud"
    return "transparent: " + signed_in(az, emu, SECRET_APP[0], "servicePrincipal")


def case_transparent_wrong_secret(az_binary, emu, work):
    return login_with_wrong_secret(Az(az_binary, emu, work, "transparent-wrong-secret", transparent=True))


def case_transparent_user_password(az_binary, emu, work):
    """`az login -u -p`: MSAL asks login.microsoftonline.com/common/userrealm first."""
    az = Az(az_binary, emu, work, "transparent-user", transparent=True)
    az.run("login", "-u", USER, "-p", "emulator-user-password")
    return "transparent: " + signed_in(az, emu, USER, "user")


def case_transparent_managed_identity(az_binary, emu, work):
    """`az login --identity` with no managed-identity variables: IMDS at 169.254.169.254, through
    HTTP_PROXY to the emulator (nothing is sent to that address)."""
    az = Az(az_binary, emu, work, "transparent-identity", transparent=True)
    az.run("login", "--identity")
    token = az.json("account", "get-access-token")
    claims = claims_of(emu, token["accessToken"], ["https://management.core.windows.net/", "https://management.azure.com/"])
    assert claims["appid"] == SYSTEM_ASSIGNED, claims["appid"]
    return f"transparent: system-assigned identity {claims['appid']}: ARM token verified"


# name -> (function, expected error fragment or None)
CASES = {
    "service_principal_secret": (case_secret, None),
    "service_principal_wrong_secret": (case_wrong_secret, "AADSTS7000215"),
    "service_principal_certificate": (case_certificate, None),
    "service_principal_federated_token": (case_federated, None),
    "user_device_code": (case_device_code, None),
    "managed_identity_imds": (case_managed_identity("imds"), None),
    "managed_identity_app_service": (case_managed_identity("app_service"), None),
    "transparent_service_principal_secret": (case_transparent_secret, None),
    "transparent_service_principal_wrong_secret": (case_transparent_wrong_secret, "AADSTS7000215"),
    "transparent_user_password": (case_transparent_user_password, None),
    "transparent_managed_identity_imds": (case_transparent_managed_identity, None),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--az", default=shutil.which("az"))
    parser.add_argument("--only", default="", metavar="PREFIX",
                        help="run only the cases whose names start with PREFIX (e.g. transparent_ for "
                             "Debian's azure-cli 2.45, which has no core.instance_discovery switch)")
    args = parser.parse_args()
    if not args.az:
        parser.error("give --az PATH (no az on PATH)")
    version = subprocess.run([args.az, "version", "-o", "json"], capture_output=True, text=True, timeout=120)
    configs = tempfile.mkdtemp(prefix="emu-az-config-")
    cases = {name: (lambda emu, run=run: run(args.az, emu, configs), expect)
             for name, (run, expect) in CASES.items() if name.startswith(args.only)}
    try:
        return run_check(args.emulator, "emu-az-", cases, trust_ca=False, banner=lambda emu: (
            f"azure-cli {json.loads(version.stdout)['azure-cli']} against {emu.url} (ARM {emu.ready['arm_url']})"))
    finally:
        shutil.rmtree(configs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
