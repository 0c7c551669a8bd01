#!/usr/bin/env python3
"""Conformance adapter for the real Azure CLI (JSON-lines protocol, see
conformance/src/process_adapter.rs): the `azure_cli_login` cases sign in with `az login` and
answer with `az account get-access-token`.

    --adapter 'az=python3 conformance/adapters/azure_cli/adapter.py --az /path/to/az'

(or CONFORMANCE_AZ). Each case gets its own AZURE_CONFIG_DIR in the case's work folder and
exactly the case's environment. Without proxy variables the CLI is pointed at the emulator as a
user would: `az cloud register` with the emulator's Resource Manager (option `arm_url`), then
that cloud and `core.instance_discovery=false` as the CLI's settings variables
(`AZURE_CLOUD_NAME`, `AZURE_CORE_INSTANCE_DISCOVERY`); with them (the `transparent` profile) it keeps
its own AzureCloud and nothing is configured. Options: `login` = `service_principal` (with
`secret`, `certificate` or `federated_token_file`), `user` (`username`, `password`) or
`identity`; `tenant_id` and `client_id` default to the environment's AZURE_TENANT_ID and
AZURE_CLIENT_ID.
"""

import argparse
import json
import os
import subprocess
import sys

TIMEOUT_S = 120


def run(az, env, args, log):
    result = subprocess.run([az, *args, "--only-show-errors"], env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    log.append(f"$ az {' '.join(args[:2])} -> {result.returncode}\n{result.stderr.strip()}")
    return result


class Failure(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def check(result, what):
    if result.returncode != 0:
        text = result.stderr.strip() or result.stdout.strip()
        kind = "authentication" if "AADSTS" in text else "unavailable"
        raise Failure(kind, f"az {what} failed: {text[-1500:]}")
    return result


def login_args(options, env):
    login = options.get("login", "service_principal")
    tenant = options.get("tenant_id") or env.get("AZURE_TENANT_ID", "")
    client = options.get("client_id") or env.get("AZURE_CLIENT_ID", "")
    if login == "identity":
        return ["login", "--identity"]
    if login == "user":
        return ["login", "-u", options["username"], "-p", options["password"]]
    if login != "service_principal":
        raise Failure("configuration", f"unknown login {login!r}")
    args = ["login", "--service-principal", "-u", client, "--tenant", tenant]
    if options.get("certificate") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        return args + ["--certificate", options.get("certificate") or env["AZURE_CLIENT_CERTIFICATE_PATH"]]
    token_file = options.get("federated_token_file") or env.get("AZURE_FEDERATED_TOKEN_FILE")
    if token_file:
        with open(token_file, encoding="utf-8") as f:
            return args + ["--federated-token", f.read().strip()]
    return args + ["-p", options.get("secret") or env.get("AZURE_CLIENT_SECRET", "")]


def handle(az, request):
    env = dict(request["env"])
    env.update(AZURE_CONFIG_DIR=os.path.join(request["work_dir"], "az"), AZURE_CORE_COLLECT_TELEMETRY="false",
               AZURE_CORE_NO_COLOR="true", REQUESTS_CA_BUNDLE=request["ca_cert_path"])
    options = request.get("options", {})
    log = []
    try:
        if not env.get("HTTPS_PROXY"):
            check(run(az, env, ["cloud", "register", "-n", "EntraEmulator", "--endpoint-resource-manager",
                                options.get("arm_url", "")], log), "cloud register")
            # The CLI's settings as environment variables (AZURE_{SECTION}_{NAME}), as in CI
            # pipelines: one az process fewer each than `az cloud set` and `az config set`.
            env.update(AZURE_CLOUD_NAME="EntraEmulator", AZURE_CORE_INSTANCE_DISCOVERY="false")
        check(run(az, env, login_args(options, env), log), "login")
        scope = request.get("scopes", ["https://management.azure.com/.default"])[0]
        token = json.loads(check(run(az, env, ["account", "get-access-token", "--scope", scope, "-o", "json"], log),
                                 "account get-access-token").stdout)
        return {"token": token["accessToken"], "expires_on": token.get("expires_on"), "logs": "\n".join(log)}
    except Failure as e:
        return {"error_kind": e.kind, "message": str(e), "logs": "\n".join(log)}
    except subprocess.TimeoutExpired as e:
        return {"error_kind": "unavailable", "message": f"az did not finish within {TIMEOUT_S} s: {e.cmd[1:3]}",
                "logs": "\n".join(log)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--az", default=os.environ.get("CONFORMANCE_AZ", "az"))
    args = parser.parse_args()
    try:
        version = json.loads(subprocess.run([args.az, "version", "-o", "json"], capture_output=True, text=True,
                                            timeout=TIMEOUT_S).stdout)["azure-cli"]
    except Exception as e:  # noqa: BLE001 - not installed, or broken
        print(json.dumps({"ready": False, "reason": f"no usable Azure CLI at {args.az}: {e}"}), flush=True)
        return 0
    print(json.dumps({"ready": True, "version": f"azure-cli {version}", "credentials": ["azure_cli_login"]}),
          flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(handle(args.az, json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
