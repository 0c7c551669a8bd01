#!/usr/bin/env python3
"""Drive the unmodified Python azure-identity package against a running entra-emulator.

Usage:
    check_emulator.py --emulator PATH_TO_BINARY      # starts its own emulator on free ports
    check_emulator.py --ready-file PATH              # uses an emulator that is already running

Every case runs in a fresh child process whose environment holds only the ready file's
profile for that flow (plus PATH/HOME), so no setting leaks from one case into the next.
Issued tokens are verified against the emulator's JWKS with PyJWT. Exits non-zero when any
case fails and ends with a line "N passed, M failed".
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ARM = "https://management.azure.com/.default"
API = "api://entra-emulator-api/.default"
API_APP_ID = "99999999-9999-9999-9999-999999999999"

# name -> (profile, scope, expect) ; expect is "token" or an error fragment
CASES = {
    "client_secret": ("client_secret", ARM, "token"),
    "client_secret_v2_token": ("client_secret", API, "token"),
    "client_secret_wrong_secret": ("client_secret", ARM, "AADSTS7000215"),
    "environment_credential": ("client_secret", ARM, "token"),
    "certificate_pem": ("client_certificate", ARM, "token"),
    "certificate_pfx": ("client_certificate_pfx", API, "token"),
    "client_assertion": ("workload_identity", ARM, "token"),
    "workload_identity": ("workload_identity", ARM, "token"),
    "azure_pipelines": ("azure_pipelines", ARM, "token"),
    "azure_pipelines_wrong_access_token": ("azure_pipelines", ARM, "TF400813"),
    "managed_identity_imds": ("imds", ARM, "token"),
    "managed_identity_imds_user_assigned": ("imds_user_assigned", ARM, "token"),
    "managed_identity_app_service": ("app_service", ARM, "token"),
    "managed_identity_azure_arc": ("azure_arc", ARM, "token"),
    "managed_identity_service_fabric": ("service_fabric", ARM, "token"),
    "managed_identity_cloud_shell": ("cloud_shell", ARM, "token"),
    "managed_identity_azure_ml": ("azure_ml", ARM, "token"),
    "azure_cli": ("azure_cli", ARM, "token"),
    "azure_developer_cli": ("azure_developer_cli", ARM, "token"),
}

# Tokens that are not issued to the profile's AZURE_CLIENT_ID.
EXPECTED_CLIENT = {
    # Cloud Shell tokens are the signed-in user's, issued to the Azure CLI's client id.
    "managed_identity_cloud_shell": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    "azure_cli": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    "azure_developer_cli": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
}

SYSTEM_ASSIGNED_CLIENT_ID = "a0a0a0a0-0000-4000-8000-000000000001"


def build_credential(name, env):
    from azure.identity import (
        AzureCliCredential,
        AzureDeveloperCliCredential,
        AzurePipelinesCredential,
        ManagedIdentityCredential,
        CertificateCredential,
        ClientAssertionCredential,
        ClientSecretCredential,
        EnvironmentCredential,
        WorkloadIdentityCredential,
    )

    tenant = env.get("AZURE_TENANT_ID")
    client = env.get("AZURE_CLIENT_ID")
    if name.startswith("client_secret"):
        secret = env["AZURE_CLIENT_SECRET"]
        if name.endswith("wrong_secret"):
            secret = "definitely-not-the-secret"
        return ClientSecretCredential(tenant, client, secret, disable_instance_discovery=True)
    if name == "environment_credential":
        return EnvironmentCredential(disable_instance_discovery=True)
    if name.startswith("certificate"):
        return CertificateCredential(
            tenant,
            client,
            certificate_path=env["AZURE_CLIENT_CERTIFICATE_PATH"],
            password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
            disable_instance_discovery=True,
        )
    if name == "client_assertion":
        path = env["AZURE_FEDERATED_TOKEN_FILE"]

        def read_assertion():
            with open(path, encoding="utf-8") as f:
                return f.read().strip()

        return ClientAssertionCredential(tenant, client, read_assertion)
    if name == "workload_identity":
        return WorkloadIdentityCredential()
    if name.startswith("azure_pipelines"):
        token = env["SYSTEM_ACCESSTOKEN"]
        if name.endswith("wrong_access_token"):
            token = "not-the-system-access-token"
        return AzurePipelinesCredential(
            tenant_id=env["AZURESUBSCRIPTION_TENANT_ID"],
            client_id=env["AZURESUBSCRIPTION_CLIENT_ID"],
            service_connection_id=env["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
            system_access_token=token,
        )
    if name == "azure_cli":
        return AzureCliCredential()
    if name == "azure_developer_cli":
        return AzureDeveloperCliCredential()
    if name == "managed_identity_imds_user_assigned":
        return ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])
    if name.startswith("managed_identity"):
        return ManagedIdentityCredential()
    raise ValueError(f"unknown case {name}")


def verify(token, scope, env, name=""):
    """Verify the token's signature against JWKS and check its issuer and audience."""
    import jwt
    import requests

    # The harness passes the emulator's URL separately: managed-identity profiles have no
    # authority, but their tokens verify against the same JWKS.
    authority = (env.get("AZURE_AUTHORITY_HOST") or env["EMULATOR_HTTPS_URL"]).rstrip("/")
    unverified = jwt.decode(token, options={"verify_signature": False})
    tid = unverified["tid"]
    jwks = requests.get(f"{authority}/{tid}/discovery/v2.0/keys", timeout=10).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
    if scope == ARM:
        audience, issuer = "https://management.azure.com", f"https://sts.windows.net/{tid}/"
    else:
        audience, issuer = API_APP_ID, f"{authority}/{tid}/v2.0"
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer)
    client = (EXPECTED_CLIENT.get(name) or env.get("AZURE_CLIENT_ID")
              or env.get("AZURESUBSCRIPTION_CLIENT_ID") or SYSTEM_ASSIGNED_CLIENT_ID)
    caller = claims.get("appid") or claims.get("azp")
    if caller != client:
        raise AssertionError(f"token was issued to {caller}, expected {client}")
    return claims


def run_case(name):
    """Child-process entry point: print one JSON line describing the outcome."""
    profile, scope, expect = CASES[name]
    env = dict(os.environ)
    try:
        credential = build_credential(name, env)
        token = credential.get_token(scope)
        claims = verify(token.token, scope, env, name)
        outcome = {"ok": True, "claims": {k: claims[k] for k in ("aud", "iss", "tid", "oid")}}
    except Exception as e:  # noqa: BLE001 - report every failure as data
        outcome = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(outcome))


def start_emulator(binary, workdir):
    ready = os.path.join(workdir, "ready.json")
    log = open(os.path.join(workdir, "emulator.log"), "wb")
    proc = subprocess.Popen(
        [binary, "--https-port", "0", "--http-port", "0", "--service-fabric-port", "0", "--state-dir",
         os.path.join(workdir, "state"), "--ready-file", ready],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the emulator did not become ready; see {log.name}")
        time.sleep(0.05)
    return proc, ready


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator")
    parser.add_argument("--ready-file")
    parser.add_argument("--case")
    args = parser.parse_args()
    if args.case:
        run_case(args.case)
        return 0
    workdir = tempfile.mkdtemp(prefix="emu-py-")
    proc = None
    if args.ready_file:
        ready_path = args.ready_file
    elif args.emulator:
        proc, ready_path = start_emulator(args.emulator, workdir)
    else:
        parser.error("give --emulator or --ready-file")
    try:
        with open(ready_path, encoding="utf-8") as f:
            ready = json.load(f)
        import azure.identity
        print(f"azure-identity {azure.identity.__version__} against {ready['https_url']}")
        passed = failed = 0
        for name, (profile, _scope, expect) in CASES.items():
            env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
            if profile not in ready["profiles"]:
                print(f"FAIL {name:40} the ready file has no '{profile}' profile")
                failed += 1
                continue
            env.update(ready["profiles"][profile])
            env["TZ"] = "UTC"
            env["EMULATOR_HTTPS_URL"] = ready["https_url"]
            started = time.monotonic()
            child = subprocess.run(
                [sys.executable, __file__, "--case", name],
                env=env, capture_output=True, text=True, timeout=120,
            )
            elapsed = time.monotonic() - started
            try:
                outcome = json.loads(child.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                outcome = {"ok": False, "error": f"no result; stderr: {child.stderr[-2000:]}"}
            if expect == "token":
                good = outcome["ok"]
                detail = outcome.get("claims") or outcome.get("error")
            else:
                good = not outcome["ok"] and expect in outcome.get("error", "")
                detail = outcome.get("error") or "unexpectedly got a token"
            passed += good
            failed += not good
            print(f"{'PASS' if good else 'FAIL'} {name:40} {elapsed:5.2f}s  {detail}")
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
