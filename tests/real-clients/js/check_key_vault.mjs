// Drive the unmodified @azure/keyvault-secrets client, authenticated by @azure/identity,
// against the emulator's Key Vault: set/get/list/delete/recover/purge, RBAC, and continuous
// access evaluation (after POST /_emulator/revoke the next call recovers through the claims
// challenge, which the JS client decodes with atob, with one new token request).
//
//   node check_key_vault.mjs --emulator PATH_TO_BINARY
//
// The vault listens on 127.0.0.1, so the client is built with
// disableChallengeResourceVerification (its check that the challenge's resource matches the
// vault's domain, *.vault.azure.net). The cases run in a child process started with
// NODE_EXTRA_CA_CERTS (read only at process start). Ends with "N passed, M failed".
import { request } from "node:https";
import { fileURLToPath } from "node:url";

import { main, version } from "./harness.mjs";

const TENANT = "11111111-1111-1111-1111-111111111111";
const SECRET_APP = ["22222222-2222-2222-2222-222222222222", "emulator-client-secret"];
const WEB_APP = ["abababab-abab-4bab-8bab-abababababab", "emulator-web-app-secret"];
const CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const USER = "emulator.user@emulator.onmicrosoft.com";

function control(ready, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = data === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(data) };
    const req = request(`${ready.https_url}/_emulator${path}`, { method, headers }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const tokenRequests = async (ready) =>
  (await control(ready, "GET", "/requests")).filter((r) => ["token", "imds"].includes(r.endpoint)).length;
const revoked401s = async (ready) =>
  (await control(ready, "GET", "/requests")).filter((r) => r.failed_check === "revoked").length;

async function clientFor(ready, credential, vault = "emulator-vault") {
  const { SecretClient } = await import("@azure/keyvault-secrets");
  return new SecretClient(ready.key_vaults[vault], credential, { disableChallengeResourceVerification: true });
}

async function secretCredential(ready) {
  const identity = await import("@azure/identity");
  return new identity.ClientSecretCredential(TENANT, SECRET_APP[0], SECRET_APP[1], {
    authorityHost: ready.https_url, disableInstanceDiscovery: true,
  });
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function caeRound(ready, credential, subject, name) {
  const client = await clientFor(ready, credential);
  await client.setSecret(name, "before revocation");
  assert((await client.getSecret(name)).value === "before revocation", "first get");
  const [tokens, revoked] = [await tokenRequests(ready), await revoked401s(ready)];
  await control(ready, "POST", "/revoke", { subject });
  assert((await client.getSecret(name)).value === "before revocation", "get after revoke");
  const newTokens = (await tokenRequests(ready)) - tokens;
  const challenges = (await revoked401s(ready)) - revoked;
  assert(newTokens === 1 && challenges === 1, `${newTokens} token requests and ${challenges} CAE 401s after revoke`);
  return `recovered after revoke: ${newTokens} token request, ${challenges} claims challenge`;
}

const CASES = {
  async secret_lifecycle(ready) {
    const client = await clientFor(ready, await secretCredential(ready));
    const first = await client.setSecret("lifecycle", "one", { contentType: "text/plain" });
    await client.setSecret("lifecycle", "two");
    assert((await client.getSecret("lifecycle")).value === "two", "latest");
    assert((await client.getSecret("lifecycle", { version: first.properties.version })).value === "one", "by version");
    for (let i = 0; i < 27; i++) await client.setSecret(`many-${String(i).padStart(2, "0")}`, "x");
    const names = [];
    for await (const p of client.listPropertiesOfSecrets()) names.push(p.name);
    assert(names.length === 28, `listed ${names.length}`);
    let versions = 0;
    for await (const v of client.listPropertiesOfSecretVersions("lifecycle")) versions += v ? 1 : 0;
    assert(versions === 2, `${versions} versions`);
    await (await client.beginDeleteSecret("lifecycle")).pollUntilDone();
    assert((await client.getDeletedSecret("lifecycle")).name === "lifecycle", "deleted");
    await (await client.beginRecoverDeletedSecret("lifecycle")).pollUntilDone();
    assert((await client.getSecret("lifecycle")).value === "two", "recovered");
    await (await client.beginDeleteSecret("many-00")).pollUntilDone();
    await client.purgeDeletedSecret("many-00");
    return `${names.length} secrets listed across pages, 2 versions, delete/recover/purge`;
  },
  async client_secret_cae_recovery(ready) {
    return caeRound(ready, await secretCredential(ready), SECRET_APP[0], "cae-secret");
  },
  async device_code_user_cae_recovery(ready) {
    const identity = await import("@azure/identity");
    let signIns = 0;
    const credential = new identity.DeviceCodeCredential({
      tenantId: TENANT, clientId: CLI_CLIENT_ID, authorityHost: ready.https_url, disableInstanceDiscovery: true,
      userPromptCallback: async (info) => {
        signIns++;
        await control(ready, "POST", "/device-codes/approve", { user_code: info.userCode, user: USER });
      },
    });
    const client = await clientFor(ready, credential);
    await client.setSecret("cae-user", "v");
    const revoked = await revoked401s(ready);
    await control(ready, "POST", "/revoke", { subject: USER });
    assert((await client.getSecret("cae-user")).value === "v", "get after revoke");
    assert((await revoked401s(ready)) - revoked === 1, "one CAE 401");
    assert(signIns === 2, `${signIns} sign-ins`);
    return "after the claims challenge the user signed in again (2 device-code sign-ins)";
  },
  async no_role_assignment(ready) {
    const identity = await import("@azure/identity");
    const credential = new identity.ClientSecretCredential(TENANT, WEB_APP[0], WEB_APP[1], {
      authorityHost: ready.https_url, disableInstanceDiscovery: true,
    });
    await (await clientFor(ready, credential)).getSecret("anything");
    return "got a secret without a role";
  },
};
const EXPECT = { no_role_assignment: "Caller is not authorized to perform action on resource" };

main({
  script: fileURLToPath(import.meta.url),
  prefix: "emu-js-kv-",
  cases: CASES,
  expect: EXPECT,
  banner: (ready) => `@azure/keyvault-secrets ${version("@azure/keyvault-secrets")} with @azure/identity ${version("@azure/identity")} against ${JSON.stringify(ready.key_vaults)}`,
  childEnv: (ready) => ({ NODE_EXTRA_CA_CERTS: ready.ca_cert_path, NO_PROXY: "127.0.0.1,localhost" }),
}).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
