// Transparent mode with the unmodified @azure/identity and @azure/keyvault-secrets: the cases
// run in a child process whose environment is only the ready file's `transparent` profile
// (HTTPS_PROXY/HTTP_PROXY to the emulator's proxy port, NODE_EXTRA_CA_CERTS with the
// transparent-mode CA, the secret application's AZURE_* variables; no authority host, no
// instance-discovery switch, the Key Vault client's challenge-resource check left on). The
// clients talk to login.microsoftonline.com, emulator-vault.vault.azure.net and
// 169.254.169.254 as they would in Azure.
//
//   node check_transparent.mjs --emulator PATH_TO_BINARY
//
// Ends with "N passed, M failed".
import { fileURLToPath } from "node:url";

import { main, version } from "./harness.mjs";

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function claims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

const CASES = {
  async environment_credential() {
    const { DefaultAzureCredential } = await import("@azure/identity");
    const token = await new DefaultAzureCredential().getToken("https://vault.azure.net/.default");
    const c = claims(token.token);
    assert(c.aud === "https://vault.azure.net", `aud ${c.aud}`);
    return `DefaultAzureCredential (environment): token for ${c.appid} from ${c.iss}`;
  },
  async key_vault_secret_client() {
    const { DefaultAzureCredential } = await import("@azure/identity");
    const { SecretClient } = await import("@azure/keyvault-secrets");
    const url = process.env.AZURE_KEYVAULT_URL;
    const client = new SecretClient(url, new DefaultAzureCredential());
    await client.setSecret("transparent-js", "through the proxy");
    const secret = await client.getSecret("transparent-js");
    assert(secret.value === "through the proxy", `value ${secret.value}`);
    return `SecretClient(${url}) with the challenge-resource check on: ${secret.properties.id}`;
  },
  async managed_identity_imds() {
    const { ManagedIdentityCredential } = await import("@azure/identity");
    delete process.env.AZURE_CLIENT_ID;
    const token = await new ManagedIdentityCredential().getToken("https://management.azure.com/.default");
    return `ManagedIdentityCredential through IMDS at 169.254.169.254 (answered by the proxy): ${claims(token.token).appid}`;
  },
};

main({
  script: fileURLToPath(import.meta.url),
  prefix: "emu-js-transparent-",
  cases: CASES,
  expect: {},
  banner: (ready) => `@azure/identity ${version("@azure/identity")}, @azure/keyvault-secrets ${version("@azure/keyvault-secrets")} in transparent mode (proxy ${ready.proxy_url})`,
  childEnv: (ready) => ready.profiles.transparent,
}).catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
