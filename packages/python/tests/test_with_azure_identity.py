"""Only the fixture and azure-identity: what a Python project's test suite would write."""

import os
import sysconfig

import jwt
import pytest

from entra_emulator import find_binary


def test_a_client_secret_token_from_the_profile(entra_emulator, entra_profile):
    from azure.identity import EnvironmentCredential
    entra_profile("client_secret")
    token = EnvironmentCredential(disable_instance_discovery=True).get_token(
        "https://management.azure.com/.default")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["appid"] == "22222222-2222-2222-2222-222222222222"


def test_managed_identity_and_an_injected_fault(entra_emulator, entra_profile):
    from azure.identity import ManagedIdentityCredential
    entra_profile("imds")
    entra_emulator.add_fault("status@imds,status=503,times=1")
    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    assert token.token
    statuses = [r["status"] for r in entra_emulator.requests() if r.get("endpoint") == "imds"]
    assert statuses[0] == 503 and statuses[-1] == 200, statuses


def test_a_device_code_approved_through_the_control_plane(entra_emulator, entra_profile):
    from azure.identity import DeviceCodeCredential
    entra_profile("client_secret")  # CA trust

    def prompt(verification_uri, user_code, expires_on):
        entra_emulator.approve_device_code(user_code, "emulator.user@emulator.onmicrosoft.com")

    credential = DeviceCodeCredential(
        client_id="04b07795-8ddb-461a-bbee-02f9e1bf7b46", tenant_id="11111111-1111-1111-1111-111111111111",
        authority=entra_emulator.https_url, disable_instance_discovery=True, prompt_callback=prompt)
    token = credential.get_token("https://management.azure.com/.default")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["upn"] == "emulator.user@emulator.onmicrosoft.com"


def test_revoke_and_the_ready_file(entra_emulator):
    assert set(entra_emulator.key_vaults) == {"emulator-vault", "emulator-partner-vault"}
    assert entra_emulator.arm_url.startswith("https://127.0.0.1:")
    assert entra_emulator.revoke("22222222-2222-2222-2222-222222222222") > 0


@pytest.mark.skipif("ENTRA_EMULATOR_BIN" in os.environ, reason="a binary is named explicitly")
def test_the_binary_comes_from_the_wheel():
    # The wheel installs entra-emulator into this environment's scripts folder.
    assert os.path.dirname(find_binary()) == sysconfig.get_path("scripts")
