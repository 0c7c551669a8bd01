#!/usr/bin/env python3
"""Drive the unmodified Python azure-keyvault-secrets client, authenticated by azure-identity,
against the emulator's Key Vault: set/get/list/update/delete/recover/purge, RBAC, the tenant
challenge, and continuous access evaluation (after POST /_emulator/revoke, the client's next
call recovers through the claims challenge with one new token request).

Usage:
    check_key_vault.py --emulator PATH_TO_BINARY

The vault listens on 127.0.0.1, so the client is built with verify_challenge_resource=False
(its check that the challenge's resource matches the vault's domain, *.vault.azure.net).
Exits non-zero when any case fails and ends with a line "N passed, M failed".
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from check_user_flows import approve_callback, run_check  # noqa: E402

TENANT = "11111111-1111-1111-1111-111111111111"
SECRET_APP = ("22222222-2222-2222-2222-222222222222", "emulator-client-secret")
CERT_APP = "33333333-3333-3333-3333-333333333333"
WEB_APP = ("abababab-abab-4bab-8bab-abababababab", "emulator-web-app-secret")
USER = ("emulator.user@emulator.onmicrosoft.com", "emulator-user-password")
DEVELOPER_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
SYSTEM_ASSIGNED = "a0a0a0a0-0000-4000-8000-000000000001"


def common(emu):
    return {"authority": emu.url, "disable_instance_discovery": True}


def client_for(emu, credential, vault="emulator-vault"):
    from azure.keyvault.secrets import SecretClient
    return SecretClient(emu.ready["key_vaults"][vault], credential, verify_challenge_resource=False)


def log(emu):
    return emu.control("GET", "/requests").json()


def token_requests(emu):
    return sum(1 for r in log(emu) if r.get("endpoint") in ("token", "imds", "app_service"))


def revoked_401s(emu):
    return sum(1 for r in log(emu) if r.get("failed_check") == "revoked")


def secret_credential(emu):
    from azure.identity import ClientSecretCredential
    return ClientSecretCredential(TENANT, SECRET_APP[0], SECRET_APP[1], **common(emu))


def cae_round(emu, credential, subject, name):
    """Set and get; revoke `subject`; the next get recovers with one new token request."""
    client = client_for(emu, credential)
    client.set_secret(name, "before revocation")
    assert client.get_secret(name).value == "before revocation"
    tokens, revoked = token_requests(emu), revoked_401s(emu)
    r = emu.control("POST", "/revoke", {"subject": subject})
    assert r.status_code == 200, r.text
    assert client.get_secret(name).value == "before revocation"
    new_tokens = token_requests(emu) - tokens
    challenges = revoked_401s(emu) - revoked
    assert (new_tokens, challenges) == (1, 1), f"{new_tokens} token requests and {challenges} CAE 401s after revoke"
    client.set_secret(name, "after revocation")
    assert client.get_secret(name).value == "after revocation"
    return f"recovered after revoke: {new_tokens} token request, {challenges} claims challenge"


def case_secret_lifecycle(emu):
    client = client_for(emu, secret_credential(emu))
    first = client.set_secret("lifecycle", "one", content_type="text/plain", tags={"env": "test"})
    client.set_secret("lifecycle", "two")
    assert client.get_secret("lifecycle").value == "two"
    assert client.get_secret("lifecycle", first.properties.version).value == "one"
    for i in range(27):
        client.set_secret(f"many-{i:02}", "x")
    names = {p.name for p in client.list_properties_of_secrets()}
    assert "lifecycle" in names and len(names) == 28, sorted(names)
    versions = list(client.list_properties_of_secret_versions("lifecycle"))
    assert len(versions) == 2, versions
    updated = client.update_secret_properties("lifecycle", content_type="application/json", enabled=True)
    assert updated.content_type == "application/json"
    deleted = client.begin_delete_secret("lifecycle").result()
    assert deleted.recovery_id.endswith("/deletedsecrets/lifecycle"), deleted.recovery_id
    assert client.get_deleted_secret("lifecycle").name == "lifecycle"
    assert any(d.name == "lifecycle" for d in client.list_deleted_secrets())
    client.begin_recover_deleted_secret("lifecycle").result()
    assert client.get_secret("lifecycle").value == "two"
    client.begin_delete_secret("many-00").result()
    client.purge_deleted_secret("many-00")
    from azure.core.exceptions import ResourceNotFoundError
    try:
        client.get_secret("many-00")
        raise AssertionError("a purged secret was found")
    except ResourceNotFoundError as e:
        assert "SecretNotFound" in str(e), e
    return f"{len(names)} secrets listed across pages, 2 versions, delete/recover/purge"


def case_secret_cae(emu):
    return cae_round(emu, secret_credential(emu), SECRET_APP[0], "cae-secret")


def case_certificate_cae(emu):
    from azure.identity import CertificateCredential
    path = emu.ready["profiles"]["client_certificate"]["AZURE_CLIENT_CERTIFICATE_PATH"]
    credential = CertificateCredential(TENANT, CERT_APP, certificate_path=path, **common(emu))
    return cae_round(emu, credential, CERT_APP, "cae-certificate")


def case_user_cae(emu):
    """A device-code user (approved through the control plane): after the revocation the
    refresh token is void (AADSTS50173), so the claims challenge leads to a new sign-in."""
    from azure.identity import DeviceCodeCredential
    prompts = []
    approve = approve_callback(emu, USER[0])

    def prompt(verification_uri, user_code, expires_on):
        prompts.append(user_code)
        approve(verification_uri, user_code, expires_on)

    credential = DeviceCodeCredential(
        client_id=DEVELOPER_CLIENT, tenant_id=TENANT, prompt_callback=prompt, **common(emu))
    client = client_for(emu, credential)
    client.set_secret("cae-user", "before revocation")
    revoked = revoked_401s(emu)
    r = emu.control("POST", "/revoke", {"subject": USER[0]})
    assert r.status_code == 200, r.text
    assert client.get_secret("cae-user").value == "before revocation"
    assert revoked_401s(emu) - revoked == 1
    assert len(prompts) == 2, f"{len(prompts)} sign-ins"
    return "after the claims challenge the user signed in again (2 device-code sign-ins)"


def case_managed_identity(emu):
    """MSAL asks IMDS for no client capabilities, so these tokens are not CAE: a revocation
    does not touch them (as in Azure, non-CAE tokens work until they expire)."""
    from azure.identity import ManagedIdentityCredential
    profile = emu.ready["profiles"]["imds"]
    saved = {k: os.environ.get(k) for k in profile}
    os.environ.update(profile)
    try:
        client = client_for(emu, ManagedIdentityCredential())
        client.set_secret("managed-identity", "mi")
        revoked = revoked_401s(emu)
        assert emu.control("POST", "/revoke", {"subject": SYSTEM_ASSIGNED}).status_code == 200
        assert client.get_secret("managed-identity").value == "mi"
        assert revoked_401s(emu) == revoked, "a non-CAE token was refused after revocation"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return "set/get; its non-CAE token kept working after revoke"


def case_forbidden(emu):
    from azure.identity import ClientSecretCredential
    credential = ClientSecretCredential(TENANT, WEB_APP[0], WEB_APP[1], **common(emu))
    client_for(emu, credential).get_secret("anything")
    return "got a secret without a role"


def case_wrong_tenant(emu):
    client_for(emu, secret_credential(emu), vault="emulator-partner-vault").get_secret("anything")
    return "got a secret from another tenant's vault"


# name -> (function, expected error fragment or None)
CASES = {
    "secret_lifecycle": (case_secret_lifecycle, None),
    "client_secret_cae_recovery": (case_secret_cae, None),
    "certificate_cae_recovery": (case_certificate_cae, None),
    "user_cae_recovery": (case_user_cae, None),
    "managed_identity_non_cae": (case_managed_identity, None),
    "no_role_assignment": (case_forbidden, "(Forbidden) Caller is not authorized to perform action on resource. If role assignments, deny assignments or role definitions were changed recently, please observe propagation time. Caller: appid=abababab"),
    # The vault's challenge names its own tenant; the credential refuses to go there.
    "other_tenants_vault": (case_wrong_tenant, "not configured to acquire tokens for tenant 12121212"),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True)
    args = parser.parse_args()

    def banner(emu):
        import azure.identity
        import azure.keyvault.secrets
        return (f"azure-keyvault-secrets {azure.keyvault.secrets.__version__} with azure-identity "
                f"{azure.identity.__version__} against {emu.ready['key_vaults']}")
    return run_check(args.emulator, "emu-py-kv-", CASES, banner)


if __name__ == "__main__":
    sys.exit(main())
