#!/usr/bin/env python3
"""Python azure-identity's persistent token cache, for the cross-language test
(tests/tests/persistent_cache.rs).

    persistent_cache.py sign-in AUTHORITY CACHE_NAME     # device code (the emulator approves it);
                                                         # prints the AuthenticationRecord JSON
    persistent_cache.py silent AUTHORITY CACHE_NAME RECORD_FILE SCOPE [cae|retry]
                                                         # no prompt allowed; prints the token's upn.
                                                         # retry: up to twice more, 0.5 s apart, when the
                                                         # cache looked empty (msal-extensions reads
                                                         # without the lock while another Python
                                                         # process's FilePersistence truncates and
                                                         # rewrites it) or libsecret's trial run failed
    persistent_cache.py app AUTHORITY CACHE_NAME TENANT CLIENT_ID SECRET SCOPE
                                                         # ClientSecretCredential; prints the token
    persistent_cache.py dump CACHE_NAME SUFFIX           # prints the cache (".nocae" or ".cae") as
                                                         # msal-extensions reads it

HOME decides where the cache lives (~/.IdentityService/CACHE_NAME.nocae); REQUESTS_CA_BUNDLE
trusts the emulator. With ENTRA_TEST_CACHE_ENCRYPTED=1 the cache must be encrypted
(allow_unencrypted_storage=False): on Linux msal-extensions keeps it in the Secret Service that
DBUS_SESSION_BUS_ADDRESS reaches, through libsecret (PyGObject).
"""

import json
import os
import sys

from azure.identity import AuthenticationRecord, DeviceCodeCredential, TokenCachePersistenceOptions


def main():
    encrypted = os.environ.get("ENTRA_TEST_CACHE_ENCRYPTED") == "1"
    if sys.argv[1] == "dump":
        from azure.identity._persistent_cache import _get_persistence
        name, suffix = sys.argv[2:4]
        persistence = _get_persistence(allow_unencrypted=not encrypted, account_name="MSALCache",
                                       cache_name=name + suffix)
        from msal_extensions.persistence import PersistenceNotFound
        try:
            cache = json.loads(persistence.load() or "{}")
        except PersistenceNotFound:
            cache = {}
        print(json.dumps({"persistence": type(persistence).__name__, "cache": cache}))
        return 0
    mode, authority, name = sys.argv[1:4]
    options = TokenCachePersistenceOptions(name=name, allow_unencrypted_storage=not encrypted)
    if mode == "app":
        from azure.identity import ClientSecretCredential
        tenant, client_id, secret, scope = sys.argv[4:8]
        credential = ClientSecretCredential(tenant, client_id, secret, authority=authority,
                                            disable_instance_discovery=True,
                                            cache_persistence_options=options)
        print(credential.get_token(scope).token)
        return 0
    common = {"disable_instance_discovery": True, "cache_persistence_options": options}
    if mode == "sign-in":
        credential = DeviceCodeCredential(prompt_callback=lambda *a: None, authority=authority,
                                          tenant_id="organizations", **common)
        record = credential.authenticate(scopes=["https://management.azure.com/.default"])
        print(record.serialize())
        return 0
    record_file, scope = sys.argv[4:6]
    cae = sys.argv[6:7] == ["cae"]
    retry = sys.argv[6:7] == ["retry"]
    with open(record_file, encoding="utf-8") as f:
        record = AuthenticationRecord.deserialize(f.read())

    def refuse(*_):
        raise SystemExit("a device code was requested: the sign-in was not silent")

    def attempt():
        # The record names the authority and tenant.
        credential = DeviceCodeCredential(authentication_record=record, disable_automatic_authentication=True,
                                          prompt_callback=refuse, **common)
        return credential.get_token(scope, enable_cae=cae)

    # With `retry`, up to three attempts with a new credential each: besides the unlocked read
    # above, libsecret's trial run can fail when several processes open the keyring at once.
    for remaining in range(2 if retry else 0, -1, -1):
        try:
            token = attempt()
            break
        except Exception:  # pylint: disable=broad-except
            if not remaining:
                raise
            import time
            time.sleep(0.5)
    import jwt
    claims = jwt.decode(token.token, options={"verify_signature": False})
    print(json.dumps({"upn": claims.get("upn") or claims.get("preferred_username"), "aud": claims["aud"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
