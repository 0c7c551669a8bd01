#!/usr/bin/env python3
"""Transparent mode with the real, unmodified Python libraries: azure-identity and
azure-keyvault-secrets are given nothing but the ready file's `transparent` profile (proxy
variables and CA trust; no authority host, no instance-discovery switch, the Key Vault client's
challenge-resource check left on) and talk to login.microsoftonline.com,
emulator-vault.vault.azure.net and 169.254.169.254 as they would in Azure.

Usage:
    check_transparent.py --emulator PATH_TO_BINARY

Exits non-zero when any case fails; ends with "N passed, M failed".
"""

import argparse
import contextlib
import os
import sys

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from check_user_flows import claims_of, run_check  # noqa: E402

VAULT_AUDIENCE = "https://vault.azure.net"


@contextlib.contextmanager
def transparent_env(emu, drop=()):
    """The process environment as the `transparent` profile sets it (restored afterwards)."""
    saved = dict(os.environ)
    try:
        for name in ("AZURE_AUTHORITY_HOST", "MSI_ENDPOINT", "IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
            os.environ.pop(name, None)
        os.environ.update(emu.ready["profiles"]["transparent"])
        for name in drop:
            os.environ.pop(name, None)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def case_environment_credential(emu):
    from azure.identity import DefaultAzureCredential
    with transparent_env(emu):
        token = DefaultAzureCredential().get_token("https://vault.azure.net/.default")
    claims = claims_of(emu, token.token, VAULT_AUDIENCE)
    return f"DefaultAzureCredential (environment): token for {claims['appid']}"


def case_key_vault(emu):
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient
    with transparent_env(emu):
        url = os.environ["AZURE_KEYVAULT_URL"]
        client = SecretClient(url, DefaultAzureCredential(exclude_managed_identity_credential=True))
        client.set_secret("transparent-python", "through the proxy")
        secret = client.get_secret("transparent-python")
    assert secret.value == "through the proxy", secret.value
    assert secret.id.startswith(f"{url}/secrets/transparent-python/"), secret.id
    return f"SecretClient({url}) with the challenge-resource check on: {secret.id}"


def case_managed_identity(emu):
    from azure.identity import ManagedIdentityCredential
    with transparent_env(emu, drop=("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")):
        token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    claims = claims_of(emu, token.token, ["https://management.azure.com", "https://management.azure.com/"])
    return f"ManagedIdentityCredential through IMDS at 169.254.169.254 (answered by the proxy): {claims['appid']}"


def case_other_host(emu):
    with transparent_env(emu):
        requests.get("https://example.com/", timeout=10)
    return "example.com answered"


# name -> (function, expected error fragment or None)
CASES = {
    "environment_credential": (case_environment_credential, None),
    "key_vault_secret_client": (case_key_vault, None),
    "managed_identity_imds": (case_managed_identity, None),
    "other_host_refused": (case_other_host, "403 Forbidden"),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True)
    args = parser.parse_args()
    return run_check(args.emulator, "emu-transparent-", CASES,
                     lambda emu: f"transparent mode: proxy {emu.ready['proxy_url']}", trust_ca=False)


if __name__ == "__main__":
    sys.exit(main())
