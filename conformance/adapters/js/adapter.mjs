// Conformance adapter for JavaScript's @azure/identity (JSON-lines protocol, see
// conformance/src/process_adapter.rs and conformance/README.md).
//
// The package is loaded from AZURE_IDENTITY_JS_DIR (default: tests/real-clients/js, where
// `npm ci` installs the pinned version). Each scenario runs in a fresh Node process whose
// environment is exactly the scenario's: @azure/identity reads process.env at construction and
// Node reads NODE_EXTRA_CA_CERTS only at start.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { format } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE_DIR = resolve(process.env.AZURE_IDENTITY_JS_DIR || join(HERE, "../../../tests/real-clients/js"));
const SUPPORTED = [
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
  "authorization_code",
  "on_behalf_of",
];
// Fast retries keep fault scenarios quick; Retry-After is still honoured.
const FAST_RETRY = { retryOptions: { retryDelayInMs: 50, maxRetryDelayInMs: 200 } };

async function load(name) {
  const require = createRequire(join(PACKAGE_DIR, "package.json"));
  return import(pathToFileURL(require.resolve(name)).href);
}

function versionOf(name) {
  const require = createRequire(join(PACKAGE_DIR, "package.json"));
  let dir = dirname(require.resolve(name));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      if (pkg.name === name) return pkg.version;
    } catch {}
    dir = dirname(dir);
  }
  return "unknown";
}

async function hello() {
  try {
    await load("@azure/identity");
    const version = versionOf("@azure/identity");
    console.log(JSON.stringify({ ready: true, version: `@azure/identity ${version}`, credentials: SUPPORTED }));
    return true;
  } catch (e) {
    console.log(JSON.stringify({ ready: false, reason: `@azure/identity is not installed in ${PACKAGE_DIR} (run npm ci there): ${e.message}` }));
    return false;
  }
}

function build(identity, kind, options, env) {
  const opt = (name, variable) => options[name] ?? (variable ? env[variable] : undefined);
  const common = { disableInstanceDiscovery: true, ...FAST_RETRY };
  const tenant = opt("tenant_id", "AZURE_TENANT_ID");
  const client = opt("client_id", "AZURE_CLIENT_ID");
  switch (kind) {
    case "client_secret":
      return new identity.ClientSecretCredential(tenant, client, opt("secret", "AZURE_CLIENT_SECRET"), common);
    case "client_certificate":
      return new identity.ClientCertificateCredential(
        tenant,
        client,
        { certificatePath: opt("certificate", "AZURE_CLIENT_CERTIFICATE_PATH"), certificatePassword: opt("password", "AZURE_CLIENT_CERTIFICATE_PASSWORD") },
        { ...common, sendCertificateChain: Boolean(options.send_certificate_chain) },
      );
    case "client_assertion": {
      const read = options.assertion !== undefined
        ? async () => options.assertion
        : async () => readFileSync(options.assertion_file, "utf8").trim();
      return new identity.ClientAssertionCredential(tenant, client, read, common);
    }
    case "workload_identity":
      return new identity.WorkloadIdentityCredential({
        ...common,
        ...(options.tenant_id ? { tenantId: options.tenant_id } : {}),
        ...(options.client_id ? { clientId: options.client_id } : {}),
        ...(options.token_file_path ? { tokenFilePath: options.token_file_path } : {}),
      });
    case "azure_pipelines":
      return new identity.AzurePipelinesCredential(
        opt("tenant_id", "AZURESUBSCRIPTION_TENANT_ID"),
        opt("client_id", "AZURESUBSCRIPTION_CLIENT_ID"),
        opt("service_connection_id", "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
        opt("system_access_token", "SYSTEM_ACCESSTOKEN"),
        common,
      );
    case "managed_identity":
      if (options.user_assigned_client_id) return new identity.ManagedIdentityCredential({ clientId: options.user_assigned_client_id, ...FAST_RETRY });
      if (options.user_assigned_object_id) return new identity.ManagedIdentityCredential({ objectId: options.user_assigned_object_id, ...FAST_RETRY });
      if (options.user_assigned_resource_id) return new identity.ManagedIdentityCredential({ resourceId: options.user_assigned_resource_id, ...FAST_RETRY });
      return new identity.ManagedIdentityCredential(FAST_RETRY);
    case "environment":
      return new identity.EnvironmentCredential(common);
    case "default":
      return new identity.DefaultAzureCredential({
        ...common,
        ...(options.managed_identity_client_id ? { managedIdentityClientId: options.managed_identity_client_id } : {}),
        ...(options.require_azure_token_credentials ? { requiredEnvVars: ["AZURE_TOKEN_CREDENTIALS"] } : {}),
      });
    case "azure_cli":
    case "azure_developer_cli": {
      const cliOptions = {};
      if (options.cli_tenant_id) cliOptions.tenantId = options.cli_tenant_id;
      if (options.cli_timeout_ms) cliOptions.processTimeoutInMs = Number(options.cli_timeout_ms);
      return kind === "azure_cli" ? new identity.AzureCliCredential(cliOptions) : new identity.AzureDeveloperCliCredential(cliOptions);
    }
    case "device_code":
      return new identity.DeviceCodeCredential({
        ...common,
        tenantId: options.tenant_id || "organizations",
        authorityHost: env.AZURE_AUTHORITY_HOST,
        userPromptCallback: () => {},
      });
    case "authorization_code":
      return authorizationCode(identity, options, env, common);
    case "on_behalf_of": {
      const assertion = options.user_assertion ?? readFileSync(options.user_assertion_file, "utf8").trim();
      const auth = options.certificate
        ? { certificatePath: options.certificate }
        : { clientSecret: options.secret };
      return new identity.OnBehalfOfCredential({
        ...common,
        tenantId: tenant,
        clientId: client,
        userAssertionToken: assertion,
        authorityHost: env.AZURE_AUTHORITY_HOST,
        ...auth,
      });
    }
    case "chained":
      return new identity.ChainedTokenCredential(
        ...(options.sources || []).filter((k) => k !== "chained").map((k) => build(identity, k, {}, env)),
      );
    default:
      throw new Error(`unsupported credential ${kind}`);
  }
}

// A person at the emulator's sign-in page: the code their browser brings back to the web app.
async function obtainCode(options, env) {
  const authority = env.AZURE_AUTHORITY_HOST.replace(/\/+$/, "");
  const params = new URLSearchParams({
    client_id: options.client_id, response_type: "code", redirect_uri: options.redirect_uri,
    scope: `${options._scopes.join(" ")} openid offline_access`, state: "conformance",
  });
  if (options.prompt) params.set("prompt", options.prompt);
  let response = await fetch(`${authority}/${options.tenant_id || "organizations"}/oauth2/v2.0/authorize?${params}`, { redirect: "manual" });
  if (response.status === 200) {
    const html = await response.text();
    const attr = (re) => (html.match(re) || [])[1]?.replace(/&amp;/g, "&");
    const action = attr(/<form[^>]* action="([^"]*)"/);
    const form = new URLSearchParams({ loginfmt: options.username || "", passwd: options.password || "", flowToken: attr(/name="flowToken" value="([^"]*)"/) || "" });
    response = await fetch(new URL(action, response.url), { method: "POST", body: form, redirect: "manual" });
  }
  const answer = new URL(response.headers.get("location") || "http://invalid/");
  const code = answer.searchParams.get("code");
  if (!code) {
    const error = new Error(`the authorization endpoint answered ${answer.searchParams.get("error")}: ${answer.searchParams.get("error_description")}`);
    error.name = "AuthenticationError";
    throw error;
  }
  return code;
}

// AuthorizationCodeCredential for the case's code; with redeem_twice, the same code in a second one.
async function authorizationCode(identity, options, env, common) {
  const code = await obtainCode(options, env);
  const make = () => new identity.AuthorizationCodeCredential(
    options.tenant_id || "organizations", options.client_id, options.secret, code, options.redirect_uri,
    { ...common, authorityHost: env.AZURE_AUTHORITY_HOST });
  if (!options.redeem_twice) return make();
  return { getToken: async (scopes) => { await make().getToken(scopes); return make().getToken(scopes); } };
}

function classify(error, constructing) {
  const name = error?.name || "";
  if (name === "CredentialUnavailableError") return "unavailable";
  if (name === "AuthenticationError") return "authentication";
  if (constructing) return "configuration";
  return "authentication";
}

// One scenario, in a child process whose environment is the scenario's.
async function runOne() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const logs = [];
  const { AzureLogger, setLogLevel } = await load("@azure/logger");
  AzureLogger.log = (...args) => logs.push(format(...args));
  setLogLevel("verbose");
  const identity = await load("@azure/identity");
  process.chdir(request.work_dir);
  const result = {};
  let credential;
  try {
    const options = { ...(request.options || {}), _scopes: request.scopes };
    credential = await build(identity, request.credential, options, request.env);
  } catch (e) {
    Object.assign(result, { error_kind: classify(e, true), message: `${e.name}: ${e.message}` });
  }
  if (credential) {
    try {
      // Continuous access evaluation: a CAE token, and the claims of a challenge.
      const tokenOptions = {};
      if (request.options.enable_cae) tokenOptions.enableCae = true;
      if (request.options.claims) tokenOptions.claims = request.options.claims;
      const token = await credential.getToken(request.scopes, tokenOptions);
      Object.assign(result, { token: token.token, expires_on: Math.floor(token.expiresOnTimestamp / 1000) });
    } catch (e) {
      Object.assign(result, { error_kind: classify(e, false), message: `${e.name}: ${e.message}` });
    }
  }
  result.logs = logs.join("\n");
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

function runChild(request) {
  return new Promise((done) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--run"], {
      env: request.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", (e) => done({ message: `cannot start node: ${e.message}`, logs: "" }));
    child.on("close", () => {
      try {
        done(JSON.parse(out));
      } catch {
        done({ message: `the scenario's node process gave no result: ${err.slice(0, 2000)}`, logs: err });
      }
    });
    child.stdin.end(JSON.stringify(request));
  });
}

async function main() {
  if (process.argv.includes("--run")) return runOne();
  if (!(await hello())) return;
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const result = await runChild(JSON.parse(line));
    process.stdout.write(JSON.stringify(result) + "\n");
  }
}

main();
