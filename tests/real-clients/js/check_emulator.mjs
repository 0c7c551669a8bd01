// Drive the unmodified @azure/identity package against a running entra-emulator.
//
//   node check_emulator.mjs --emulator PATH_TO_BINARY   # starts its own emulator on free ports
//   node check_emulator.mjs --ready-file PATH           # uses an emulator already running
//
// Each case runs in a fresh Node process whose environment holds only the ready file's profile
// for that flow (NODE_EXTRA_CA_CERTS is read at process start). Issued tokens are verified
// against the emulator's JWKS with node:crypto. Ends with "N passed, M failed".
import { spawn, spawnSync } from "node:child_process";
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get, request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ARM = "https://management.azure.com/.default";
const API = "api://entra-emulator-api/.default";
const API_APP_ID = "99999999-9999-9999-9999-999999999999";

// name -> [profile, scope, expectation ("token" or an error fragment)]
const CASES = {
  client_secret: ["client_secret", ARM, "token"],
  client_secret_v2_token: ["client_secret", API, "token"],
  client_secret_wrong_secret: ["client_secret", ARM, "AADSTS7000215"],
  environment_credential: ["client_secret", ARM, "token"],
  certificate_pem: ["client_certificate", API, "token"],
  client_assertion: ["workload_identity", ARM, "token"],
  workload_identity: ["workload_identity", ARM, "token"],
  azure_pipelines: ["azure_pipelines", ARM, "token"],
  managed_identity_imds: ["imds", ARM, "token"],
  managed_identity_imds_user_assigned: ["imds_user_assigned", ARM, "token"],
  managed_identity_app_service: ["app_service", ARM, "token"],
  managed_identity_azure_arc: ["azure_arc", ARM, "token"],
  managed_identity_service_fabric: ["service_fabric", ARM, "token"],
  managed_identity_cloud_shell: ["cloud_shell", ARM, "token"],
  managed_identity_azure_ml: ["azure_ml", ARM, "token"],
  azure_cli: ["azure_cli", ARM, "token"],
  azure_developer_cli: ["azure_developer_cli", ARM, "token"],
  // User sign-in: the device code is approved (or declined) through the control plane.
  device_code: ["client_secret", ARM, "token"],
  device_code_declined: ["client_secret", ARM, "authorization_declined"],
  on_behalf_of: ["client_secret", ARM, "token"],
  on_behalf_of_wrong_audience: ["client_secret", ARM, "AADSTS500131"],
};
// Tokens that are not issued to the profile's AZURE_CLIENT_ID: Cloud Shell tokens are the
// signed-in user's, issued to the Azure CLI's client id.
const CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const MIDDLE_TIER_CLIENT_ID = "99999999-9999-9999-9999-999999999999";
const EXPECTED_CLIENT = {
  managed_identity_cloud_shell: CLI_CLIENT_ID,
  azure_cli: CLI_CLIENT_ID,
  azure_developer_cli: CLI_CLIENT_ID,
  device_code: CLI_CLIENT_ID,
  on_behalf_of: MIDDLE_TIER_CLIENT_ID,
};
const USER = "emulator.user@emulator.onmicrosoft.com";

function postJson(url, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(url, { method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${res.statusCode} ${text}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

// A DeviceCodeCredential whose prompt approves (or declines) the code through the control plane.
function deviceCode(identity, env, decline = false) {
  const control = `${env.AZURE_AUTHORITY_HOST.replace(/\/+$/, "")}/_emulator/device-codes`;
  return new identity.DeviceCodeCredential({
    tenantId: env.AZURE_TENANT_ID,
    clientId: CLI_CLIENT_ID,
    authorityHost: env.AZURE_AUTHORITY_HOST,
    disableInstanceDiscovery: true,
    userPromptCallback: async (info) => {
      if (!info.message.includes(info.userCode)) throw new Error(`odd message: ${info.message}`);
      await (decline
        ? postJson(`${control}/decline`, { user_code: info.userCode })
        : postJson(`${control}/approve`, { user_code: info.userCode, user: USER }));
    },
  });
}

async function onBehalfOf(identity, env, assertionScope) {
  const userToken = await deviceCode(identity, env).getToken(assertionScope);
  return new identity.OnBehalfOfCredential({
    tenantId: env.AZURE_TENANT_ID,
    clientId: MIDDLE_TIER_CLIENT_ID,
    clientSecret: "emulator-middle-tier-secret",
    userAssertionToken: userToken.token,
    authorityHost: env.AZURE_AUTHORITY_HOST,
    disableInstanceDiscovery: true,
  });
}
const SYSTEM_ASSIGNED_CLIENT_ID = "a0a0a0a0-0000-4000-8000-000000000001";

async function buildCredential(name, env) {
  const identity = await import("@azure/identity");
  const options = { disableInstanceDiscovery: true };
  const tenant = env.AZURE_TENANT_ID;
  const client = env.AZURE_CLIENT_ID;
  switch (name) {
    case "client_secret":
    case "client_secret_v2_token":
      return new identity.ClientSecretCredential(tenant, client, env.AZURE_CLIENT_SECRET, options);
    case "client_secret_wrong_secret":
      return new identity.ClientSecretCredential(tenant, client, "definitely-not-the-secret", options);
    case "environment_credential":
      return new identity.EnvironmentCredential(options);
    case "certificate_pem":
      return new identity.ClientCertificateCredential(
        tenant, client, { certificatePath: env.AZURE_CLIENT_CERTIFICATE_PATH }, options);
    case "client_assertion":
      return new identity.ClientAssertionCredential(
        tenant, client, async () => readFileSync(env.AZURE_FEDERATED_TOKEN_FILE, "utf8").trim(), options);
    case "workload_identity":
      return new identity.WorkloadIdentityCredential(options);
    case "azure_pipelines":
      return new identity.AzurePipelinesCredential(
        env.AZURESUBSCRIPTION_TENANT_ID, env.AZURESUBSCRIPTION_CLIENT_ID,
        env.AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, env.SYSTEM_ACCESSTOKEN, options);
    case "azure_cli":
      return new identity.AzureCliCredential();
    case "azure_developer_cli":
      return new identity.AzureDeveloperCliCredential();
    case "device_code":
      return deviceCode(identity, env);
    case "device_code_declined":
      return deviceCode(identity, env, true);
    case "on_behalf_of":
      return onBehalfOf(identity, env, API);
    case "on_behalf_of_wrong_audience":
      return onBehalfOf(identity, env, ARM);
    case "managed_identity_imds_user_assigned":
      return new identity.ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID });
    case "managed_identity_imds":
    case "managed_identity_app_service":
    case "managed_identity_azure_arc":
    case "managed_identity_service_fabric":
    case "managed_identity_cloud_shell":
    case "managed_identity_azure_ml":
      return new identity.ManagedIdentityCredential();
    default:
      throw new Error(`unknown case ${name}`);
  }
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        try { resolve(JSON.parse(body)); } catch (e) { reject(e); }
      });
    }).on("error", reject);
  });
}

const b64 = (s) => Buffer.from(s, "base64url");

async function verifyToken(token, scope, env, name) {
  const [h, p, s] = token.split(".");
  const header = JSON.parse(b64(h).toString());
  const claims = JSON.parse(b64(p).toString());
  // The harness passes the emulator's URL separately: managed-identity profiles have no
  // authority, but their tokens verify against the same JWKS.
  const authority = (env.AZURE_AUTHORITY_HOST || env.EMULATOR_HTTPS_URL).replace(/\/+$/, "");
  const jwks = await getJson(`${authority}/${claims.tid}/discovery/v2.0/keys`);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`kid ${header.kid} not in JWKS`);
  const key = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: "jwk" });
  if (!verifySignature("RSA-SHA256", Buffer.from(`${h}.${p}`), key, b64(s))) {
    throw new Error("signature does not verify");
  }
  const [aud, iss] = scope === ARM
    ? ["https://management.azure.com", `https://sts.windows.net/${claims.tid}/`]
    : [API_APP_ID, `${authority}/${claims.tid}/v2.0`];
  if (claims.aud !== aud) throw new Error(`aud ${claims.aud} != ${aud}`);
  if (claims.iss !== iss) throw new Error(`iss ${claims.iss} != ${iss}`);
  const expectedClient = EXPECTED_CLIENT[name] || env.AZURE_CLIENT_ID || env.AZURESUBSCRIPTION_CLIENT_ID
    || SYSTEM_ASSIGNED_CLIENT_ID;
  if ((claims.appid || claims.azp) !== expectedClient) throw new Error("issued to the wrong client");
  return { aud: claims.aud, iss: claims.iss, oid: claims.oid };
}

async function runCase(name) {
  const [, scope] = CASES[name];
  try {
    const credential = await buildCredential(name, process.env);
    const token = await credential.getToken(scope);
    const claims = await verifyToken(token.token, scope, process.env, name);
    console.log(JSON.stringify({ ok: true, claims }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: `${e.name}: ${e.message}` }));
  }
}

async function startEmulator(binary, workdir) {
  const ready = join(workdir, "ready.json");
  const child = spawn(binary, ["--https-port", "0", "--http-port", "0", "--service-fabric-port", "0",
    "--state-dir", join(workdir, "state"), "--ready-file", ready], { stdio: "ignore" });
  const deadline = Date.now() + 60000;
  while (!existsSync(ready)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error("the emulator did not become ready");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, ready };
}

async function main() {
  const args = process.argv.slice(2);
  const flag = (n) => (args.includes(n) ? args[args.indexOf(n) + 1] : undefined);
  if (flag("--case")) return runCase(flag("--case"));
  const workdir = mkdtempSync(join(tmpdir(), "emu-js-"));
  let child;
  let readyPath = flag("--ready-file");
  if (!readyPath) {
    if (!flag("--emulator")) throw new Error("give --emulator or --ready-file");
    ({ child, ready: readyPath } = await startEmulator(flag("--emulator"), workdir));
  }
  let failed = 0;
  let passed = 0;
  try {
    const ready = JSON.parse(readFileSync(readyPath, "utf8"));
    const version = JSON.parse(readFileSync(
      join(fileURLToPath(new URL(".", import.meta.url)), "node_modules/@azure/identity/package.json"), "utf8")).version;
    console.log(`@azure/identity ${version} against ${ready.https_url}`);
    for (const [name, [profile, , expect]] of Object.entries(CASES)) {
      if (!ready.profiles[profile]) {
        console.log(`FAIL ${name.padEnd(40)} the ready file has no '${profile}' profile`);
        failed++;
        continue;
      }
      const env = {
        PATH: process.env.PATH, HOME: process.env.HOME, TZ: "UTC",
        EMULATOR_HTTPS_URL: ready.https_url, ...ready.profiles[profile],
      };
      const started = Date.now();
      const result = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--case", name],
        { env, encoding: "utf8", timeout: 120000 });
      const seconds = ((Date.now() - started) / 1000).toFixed(2);
      let outcome;
      try {
        outcome = JSON.parse(result.stdout.trim().split("\n").pop());
      } catch {
        outcome = { ok: false, error: `no result; stderr: ${result.stderr.slice(-2000)}` };
      }
      const good = expect === "token" ? outcome.ok : !outcome.ok && outcome.error.includes(expect);
      if (good) passed++; else failed++;
      const detail = outcome.ok ? JSON.stringify(outcome.claims) : outcome.error.split("\n")[0];
      console.log(`${good ? "PASS" : "FAIL"} ${name.padEnd(40)} ${seconds.padStart(5)}s  ${detail}`);
    }
  } finally {
    if (child) child.kill();
    rmSync(workdir, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
