#!/usr/bin/env python3
"""Conformance adapter for Python's azure-identity (JSON-lines protocol, see
conformance/src/process_adapter.rs).

It says hello once, then for each request line forks a child that sets the scenario's
environment as its whole environment, builds the credential, calls get_token and writes one
result line. Forking keeps scenarios isolated (azure-identity reads os.environ at construction)
without paying the import of azure.identity per scenario.
"""

import importlib
import io
import json
import logging
import os
import sys
import traceback

SUPPORTED = [
    "client_secret",
    "client_certificate",
    "client_assertion",
    "workload_identity",
    "azure_pipelines",
    "managed_identity",
    "environment",
    "default",
    "azure_cli",
    "azure_developer_cli",
    "chained",
    "device_code",
    "interactive_browser",
    "authorization_code",
    "on_behalf_of",
]

# The browser stand-in the real-client checks use: a person at the emulator's sign-in page.
STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "real-clients", "python", "browser_standin.py")

# Fast retries keep fault scenarios quick; Retry-After is still honoured by azure-core.
FAST_RETRY = {"retry_backoff_factor": 0.05}


def hello():
    try:
        import azure.identity  # noqa: F401
        from azure.identity import _version

        # What the credentials import on first use, imported once here instead of in every
        # forked child (requests reads ~/.netrc; the persistent cache, PyJWT for assertions).
        for name in ("netrc", "encodings.utf_8_sig", "msal_extensions", "jwt", "html.parser", "_strptime"):
            try:
                importlib.import_module(name)
            except ImportError:
                pass

        version = "azure-identity " + _version.VERSION
    except Exception as e:  # not installed, or broken
        print(json.dumps({"ready": False, "reason": f"azure-identity is not importable: {e}"}), flush=True)
        sys.exit(0)
    print(json.dumps({"ready": True, "version": version, "credentials": SUPPORTED}), flush=True)


def option(options, name, env=None, var=None):
    value = options.get(name)
    if value is None and env is not None and var is not None:
        value = env.get(var)
    return value


def build(kind, options, env):
    import azure.identity as ai

    tenant = option(options, "tenant_id", env, "AZURE_TENANT_ID")
    client = option(options, "client_id", env, "AZURE_CLIENT_ID")
    if kind == "client_secret":
        secret = option(options, "secret", env, "AZURE_CLIENT_SECRET")
        return ai.ClientSecretCredential(tenant, client, secret, disable_instance_discovery=True, **FAST_RETRY)
    if kind == "client_certificate":
        path = option(options, "certificate", env, "AZURE_CLIENT_CERTIFICATE_PATH")
        password = option(options, "password", env, "AZURE_CLIENT_CERTIFICATE_PASSWORD")
        return ai.CertificateCredential(
            tenant,
            client,
            certificate_path=path,
            password=password,
            send_certificate_chain=bool(options.get("send_certificate_chain")),
            disable_instance_discovery=True,
            **FAST_RETRY,
        )
    if kind == "client_assertion":
        if options.get("assertion") is not None:
            text = options["assertion"]

            def read():
                return text

        else:
            path = options.get("assertion_file")

            def read():
                with open(path) as f:
                    return f.read().strip()

        return ai.ClientAssertionCredential(tenant, client, read, disable_instance_discovery=True, **FAST_RETRY)
    if kind == "workload_identity":
        kwargs = {k: options[k] for k in ("tenant_id", "client_id", "token_file_path") if options.get(k)}
        return ai.WorkloadIdentityCredential(disable_instance_discovery=True, **kwargs, **FAST_RETRY)
    if kind == "azure_pipelines":
        return ai.AzurePipelinesCredential(
            tenant_id=option(options, "tenant_id", env, "AZURESUBSCRIPTION_TENANT_ID"),
            client_id=option(options, "client_id", env, "AZURESUBSCRIPTION_CLIENT_ID"),
            service_connection_id=option(options, "service_connection_id", env, "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
            system_access_token=option(options, "system_access_token", env, "SYSTEM_ACCESSTOKEN"),
            disable_instance_discovery=True,
            **FAST_RETRY,
        )
    if kind == "managed_identity":
        kwargs = dict(FAST_RETRY)
        if options.get("user_assigned_client_id"):
            kwargs["client_id"] = options["user_assigned_client_id"]
        elif options.get("user_assigned_object_id"):
            kwargs["identity_config"] = {"object_id": options["user_assigned_object_id"]}
        elif options.get("user_assigned_resource_id"):
            kwargs["identity_config"] = {"resource_id": options["user_assigned_resource_id"]}
        return ai.ManagedIdentityCredential(**kwargs)
    if kind == "environment":
        return ai.EnvironmentCredential(disable_instance_discovery=True, **FAST_RETRY)
    if kind == "default":
        # MSAL would otherwise look up the authority at login.microsoftonline.com.
        kwargs = dict(FAST_RETRY, disable_instance_discovery=True)
        if options.get("managed_identity_client_id"):
            kwargs["managed_identity_client_id"] = options["managed_identity_client_id"]
        if options.get("require_azure_token_credentials"):
            kwargs["require_envvar"] = True
        return ai.DefaultAzureCredential(**kwargs)
    if kind in ("azure_cli", "azure_developer_cli"):
        kwargs = {}
        if options.get("cli_tenant_id"):
            kwargs["tenant_id"] = options["cli_tenant_id"]
        if options.get("cli_timeout_ms"):
            kwargs["process_timeout"] = max(1, int(options["cli_timeout_ms"]) // 1000)
        cls = ai.AzureCliCredential if kind == "azure_cli" else ai.AzureDeveloperCliCredential
        return cls(**kwargs)
    if kind in ("device_code", "interactive_browser", "authorization_code", "on_behalf_of"):
        return build_user(kind, options, env)
    if kind == "chained":
        sources = [build(k, {}, env) for k in options.get("sources", []) if k != "chained"]
        return ai.ChainedTokenCredential(*sources)
    raise ValueError(f"unsupported credential {kind}")


def authority(env):
    return env.get("AZURE_AUTHORITY_HOST", "").rstrip("/")


def standin():
    sys.path.insert(0, os.path.dirname(STANDIN))
    import browser_standin

    return browser_standin


def obtain_code(options, env):
    """The code a person's browser brings back to the web app (query mode)."""
    import urllib.parse

    params = {
        "client_id": options.get("client_id", ""), "response_type": "code",
        "redirect_uri": options.get("redirect_uri", ""), "state": "conformance",
        "scope": " ".join(options["_scopes"]) + " openid offline_access",
    }
    if options.get("code_challenge"):
        params.update(code_challenge=options["code_challenge"], code_challenge_method="S256")
    if options.get("prompt"):
        params["prompt"] = options["prompt"]
    tenant = options.get("tenant_id", "organizations")
    url = f"{authority(env)}/{tenant}/oauth2/v2.0/authorize?{urllib.parse.urlencode(params)}"
    answer = standin().drive(url, options.get("username", ""), options.get("password", ""),
                             ca=env.get("REQUESTS_CA_BUNDLE"), deliver=False)
    location = answer.headers.get("location", "")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    if "code" in query:
        return query["code"]
    from azure.core.exceptions import ClientAuthenticationError

    raise ClientAuthenticationError(
        f"the authorization endpoint answered {query.get('error')}: {query.get('error_description')}")


def build_user(kind, options, env):
    import webbrowser

    import azure.identity as ai

    common = {"authority": authority(env), "disable_instance_discovery": True}
    tenant = options.get("tenant_id", "organizations")
    if kind == "device_code":
        return ai.DeviceCodeCredential(tenant_id=tenant, prompt_callback=lambda *a: None, **common)
    if kind == "interactive_browser":
        os.environ.update(STANDIN_USER=options.get("username", ""), STANDIN_PASSWORD=options.get("password", ""),
                          STANDIN_MFA_CODE=options.get("verification_code", ""),
                          STANDIN_ACTION="cancel" if options.get("browser_action") == "cancel" else "sign_in",
                          STANDIN_CA=env.get("REQUESTS_CA_BUNDLE", ""))
        webbrowser.register("standin", None, webbrowser.GenericBrowser([sys.executable, STANDIN, "%s"]), preferred=True)
        return ai.InteractiveBrowserCredential(tenant_id=tenant, timeout=int(options.get("timeout_secs", 30)), **common)
    if kind == "authorization_code":
        code = obtain_code(options, env)
        return CodeCredential(options, code, env, common)
    if kind == "on_behalf_of":
        path = options.get("user_assertion_file")
        assertion = options.get("user_assertion") or (open(path).read().strip() if path else "")
        if options.get("certificate"):
            with open(options["certificate"], "rb") as f:
                return ai.OnBehalfOfCredential(tenant, options.get("client_id"), client_certificate=f.read(),
                                               password=options.get("password"), user_assertion=assertion, **common)
        return ai.OnBehalfOfCredential(tenant, options.get("client_id"), client_secret=options.get("secret"),
                                       user_assertion=assertion, **common)
    raise ValueError(kind)


class CodeCredential:
    """AuthorizationCodeCredential for the case's code; with `redeem_twice`, the same code in
    a second credential. (azure-identity sends no PKCE verifier: PKCE cases skip Python.)"""

    def __init__(self, options, code, env, common):
        self.options, self.code, self.common = options, code, common

    def _credential(self):
        import azure.identity as ai

        o = self.options
        return ai.AuthorizationCodeCredential(
            o.get("tenant_id", "organizations"), o.get("client_id"), self.code, o.get("redirect_uri"),
            client_secret=o.get("secret"), **self.common)

    def get_token(self, *scopes, **kwargs):
        token = self._credential().get_token(*scopes, **kwargs)
        if self.options.get("redeem_twice"):
            token = self._credential().get_token(*scopes, **kwargs)
        return token


def revoke_then(credential, options, env, scopes):
    """After a first token: revoke the user's sessions, then ask for `then_scopes`."""
    import requests

    user = options["revoke_sessions_of"]
    url = f"{authority(env)}/_emulator/users/{user}/revoke-sessions"
    response = requests.post(url, json={}, verify=env.get("REQUESTS_CA_BUNDLE"), timeout=10)
    response.raise_for_status()
    return credential.get_token(*(options.get("then_scopes") or scopes))


def classify(error):
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError

    if isinstance(error, CredentialUnavailableError):
        return "unavailable"
    if isinstance(error, ClientAuthenticationError):
        return "authentication"
    return None


def run(request):
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["work_dir"])
    result = {"logs": ""}
    options = dict(request.get("options") or {})
    options["_scopes"] = request["scopes"]
    try:
        credential = build(request["credential"], options, request["env"])
    except Exception as e:
        kind = classify(e) or "configuration"
        result.update(error_kind=kind, message=f"{type(e).__name__}: {e}")
        logs.write(traceback.format_exc())
    else:
        try:
            # Continuous access evaluation: a CAE token, and the claims of a challenge.
            kwargs = {"enable_cae": True} if options.get("enable_cae") else {}
            if options.get("claims"):
                kwargs["claims"] = options["claims"]
            token = credential.get_token(*request["scopes"], **kwargs)
            if options.get("revoke_sessions_of"):
                token = revoke_then(credential, options, request["env"], request["scopes"])
            result.update(token=token.token, expires_on=int(token.expires_on))
        except Exception as e:
            kind = classify(e) or "authentication"
            result.update(error_kind=kind, message=f"{type(e).__name__}: {e}")
            logs.write(traceback.format_exc())
    result["logs"] = logs.getvalue()
    return result


def main():
    hello()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                result = run(request)
            except BaseException as e:  # never let the child fall back into the loop
                result = {"message": f"adapter error: {e!r}", "logs": traceback.format_exc()}
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(result))
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as inp:
            text = inp.read()
        os.waitpid(pid, 0)
        if not text:
            text = json.dumps({"message": "the adapter's child exited without a result", "logs": ""})
        print(text, flush=True)


if __name__ == "__main__":
    main()
