#!/usr/bin/env python3
"""Python azure-identity's persistent token cache, for the cross-language test
(tests/tests/persistent_cache.rs).

    persistent_cache.py sign-in AUTHORITY CACHE_NAME     # device code (the emulator approves it);
                                                         # prints the AuthenticationRecord JSON
    persistent_cache.py silent AUTHORITY CACHE_NAME RECORD_FILE SCOPE
                                                         # no prompt allowed; prints the token's upn

HOME decides where the cache lives (~/.IdentityService/CACHE_NAME.nocae); REQUESTS_CA_BUNDLE
trusts the emulator.
"""

import json
import sys

from azure.identity import AuthenticationRecord, DeviceCodeCredential, TokenCachePersistenceOptions


def main():
    mode, authority, name = sys.argv[1:4]
    options = TokenCachePersistenceOptions(name=name, allow_unencrypted_storage=True)
    common = {"disable_instance_discovery": True, "cache_persistence_options": options}
    if mode == "sign-in":
        credential = DeviceCodeCredential(prompt_callback=lambda *a: None, authority=authority,
                                          tenant_id="organizations", **common)
        record = credential.authenticate(scopes=["https://management.azure.com/.default"])
        print(record.serialize())
        return 0
    record_file, scope = sys.argv[4:6]
    with open(record_file, encoding="utf-8") as f:
        record = AuthenticationRecord.deserialize(f.read())

    def refuse(*_):
        raise SystemExit("a device code was requested: the sign-in was not silent")

    # The record names the authority and tenant.
    credential = DeviceCodeCredential(authentication_record=record, disable_automatic_authentication=True,
                                      prompt_callback=refuse, **common)
    token = credential.get_token(scope)
    import jwt
    claims = jwt.decode(token.token, options={"verify_signature": False})
    print(json.dumps({"upn": claims.get("upn") or claims.get("preferred_username"), "aud": claims["aud"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
