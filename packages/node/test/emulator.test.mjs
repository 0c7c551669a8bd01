// Only this package and @azure/identity: what a Node project's test suite would write.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ClientSecretCredential, DeviceCodeCredential, ManagedIdentityCredential } from "@azure/identity";
import { Emulator, EmulatorError, findBinary } from "entra-emulator";

const TENANT = "11111111-1111-1111-1111-111111111111";
const SECRET_APP = "22222222-2222-2222-2222-222222222222";
const USER = "emulator.user@emulator.onmicrosoft.com";
const claims = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());

let emu;
before(async () => {
  emu = await Emulator.start();
});
after(async () => {
  await emu.stop();
});

test("a client secret token through clientOptions()", async () => {
  const credential = new ClientSecretCredential(TENANT, SECRET_APP, "emulator-client-secret", emu.clientOptions());
  const token = await credential.getToken("https://management.azure.com/.default");
  assert.equal(claims(token.token).appid, SECRET_APP);
});

test("a wrong secret shows Entra's error", async () => {
  const credential = new ClientSecretCredential(TENANT, SECRET_APP, "not-the-secret", emu.clientOptions());
  await assert.rejects(credential.getToken("https://management.azure.com/.default"), /AADSTS7000215/);
});

test("managed identity (the imds profile) recovers from an injected fault", async () => {
  const profile = emu.profile("imds");
  const saved = process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = profile.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  try {
    await emu.addFault("status@imds,status=503,times=1");
    const token = await new ManagedIdentityCredential().getToken("https://management.azure.com/.default");
    assert.ok(token.token);
    const statuses = (await emu.requests()).filter((r) => r.endpoint === "imds").map((r) => r.status);
    assert.equal(statuses[0], 503);
    assert.equal(statuses.at(-1), 200);
  } finally {
    if (saved === undefined) delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
    else process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = saved;
    await emu.clearFaults();
  }
});

test("a device code approved through the control plane", async () => {
  const credential = new DeviceCodeCredential(emu.clientOptions({
    tenantId: TENANT,
    clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    userPromptCallback: (info) => {
      emu.approveDeviceCode(info.userCode, USER);
    },
  }));
  const token = await credential.getToken("https://management.azure.com/.default");
  assert.equal(claims(token.token).upn, USER);
});

test("the ready file, revoke and a missing profile", async () => {
  assert.deepEqual(Object.keys(emu.keyVaults).sort(), ["emulator-partner-vault", "emulator-vault"]);
  assert.match(emu.armUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(emu.proxyUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok((await emu.revoke(SECRET_APP)) > 0);
  assert.throws(() => emu.profile("nope"), /no profile 'nope'; there are .*client_secret/);
});

test("no binary is a clear error", () => {
  const saved = { bin: process.env.ENTRA_EMULATOR_BIN, path: process.env.PATH };
  process.env.ENTRA_EMULATOR_BIN = "/nonexistent/entra-emulator";
  process.env.PATH = "/nonexistent";
  try {
    assert.throws(() => findBinary("/also/missing"), (e) => e instanceof EmulatorError && /ENTRA_EMULATOR_BIN/.test(e.message));
  } finally {
    process.env.ENTRA_EMULATOR_BIN = saved.bin;
    process.env.PATH = saved.path;
  }
});
