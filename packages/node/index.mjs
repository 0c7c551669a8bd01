// Start the offline Entra ID emulator from Node.js and drive it.
//
//   import { Emulator } from "entra-emulator";
//   const emu = await Emulator.start();
//   const credential = new ClientSecretCredential(tenant, clientId, secret, emu.clientOptions());
//   await emu.revoke(clientId);
//   await emu.stop();
//
// The binary is found, in order: the `binary` option, ENTRA_EMULATOR_BIN, a `bin/` folder inside
// this package (where a package that carries it puts it), then PATH.
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The emulator could not start, or a control-plane call failed. */
export class EmulatorError extends Error {
  constructor(message) {
    super(message);
    this.name = "EmulatorError";
  }
}

const executable = (path) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The `entra-emulator` executable to run. */
export function findBinary(binary) {
  const name = process.platform === "win32" ? "entra-emulator.exe" : "entra-emulator";
  const candidates = [
    binary,
    process.env.ENTRA_EMULATOR_BIN,
    join(dirname(fileURLToPath(import.meta.url)), "bin", name),
    ...(process.env.PATH || "").split(delimiter).filter(Boolean).map((dir) => join(dir, name)),
  ];
  const found = candidates.find((c) => c && existsSync(c) && executable(c));
  if (!found) {
    throw new EmulatorError(
      "no entra-emulator binary: pass { binary }, set ENTRA_EMULATOR_BIN, or put entra-emulator on PATH " +
        "(cargo install --path emulator)",
    );
  }
  return found;
}

/** A running emulator on free loopback ports, with its own state directory. */
export class Emulator {
  constructor(child, ready, workdir, ownsWorkdir) {
    this.child = child;
    /** The ready file: URLs, CA path, profiles, vaults. */
    this.ready = ready;
    this.workdir = workdir;
    this.ownsWorkdir = ownsWorkdir;
    this.ca = readFileSync(ready.ca_cert_path, "utf8");
  }

  /**
   * Starts the emulator and waits (at most `timeoutMs`) for its ready file.
   * @param {{binary?: string, stateDir?: string, seedFile?: string, timeoutMs?: number, extraArgs?: string[]}} options
   */
  static async start(options = {}) {
    const { binary, stateDir, seedFile, timeoutMs = 60000, extraArgs = [] } = options;
    const owns = !stateDir;
    const workdir = stateDir || mkdtempSync(join(tmpdir(), "entra-emulator-"));
    const readyPath = join(workdir, "ready.json");
    const args = ["--https-port", "0", "--http-port", "0", "--service-fabric-port", "0",
      "--state-dir", join(workdir, "state"), "--ready-file", readyPath, ...extraArgs];
    if (seedFile) args.push("--config", seedFile);
    const log = openSync(join(workdir, "emulator.log"), "w");
    const child = spawn(findBinary(binary), args, { stdio: ["ignore", log, log] });
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(readyPath)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill();
        throw new EmulatorError(`the emulator did not become ready; see ${join(workdir, "emulator.log")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return new Emulator(child, JSON.parse(readFileSync(readyPath, "utf8")), workdir, owns);
  }

  /** The authority (`AZURE_AUTHORITY_HOST`). */
  get httpsUrl() {
    return this.ready.https_url;
  }

  /** The CA that signs the emulator's certificates (path). */
  get caCertPath() {
    return this.ready.ca_cert_path;
  }

  /** Vault name -> URL. */
  get keyVaults() {
    return { ...(this.ready.key_vaults || {}) };
  }

  /** The Resource Manager URL. */
  get armUrl() {
    return this.ready.arm_url;
  }

  /** Transparent mode's proxy URL. */
  get proxyUrl() {
    return this.ready.proxy_url;
  }

  /** The environment variables of one flow (e.g. `client_secret`, `imds`, `transparent`). */
  profile(name) {
    const profile = this.ready.profiles[name];
    if (!profile) {
      throw new EmulatorError(`no profile '${name}'; there are ${Object.keys(this.ready.profiles).sort().join(", ")}`);
    }
    return { ...profile };
  }

  /**
   * Options for any @azure/identity credential (and Azure SDK client): the emulator's authority,
   * no instance discovery, and a pipeline policy that trusts the emulator's CA for this client
   * only (NODE_EXTRA_CA_CERTS is read at process start, too late for a test suite).
   */
  clientOptions(extra = {}) {
    const ca = this.ca;
    const trust = {
      name: "entraEmulatorTrust",
      sendRequest(request, next) {
        request.tlsSettings = { ...(request.tlsSettings || {}), ca };
        return next(request);
      },
    };
    return {
      authorityHost: this.httpsUrl,
      disableInstanceDiscovery: true,
      ...extra,
      additionalPolicies: [...(extra.additionalPolicies || []), { policy: trust, position: "perCall" }],
    };
  }

  /** Calls `/_emulator{path}`; resolves to the JSON answer. Bodies are JSON, as the control plane requires. */
  control(method, path, body) {
    const data = method === "GET" ? undefined : JSON.stringify(body === undefined ? {} : body);
    const headers = data === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(data) };
    return new Promise((resolve, reject) => {
      const req = request(`${this.httpsUrl}/_emulator${path}`, { method, headers, ca: this.ca, timeout: 10000 }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          if (res.statusCode >= 300) reject(new EmulatorError(`${method} ${path}: ${res.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text) : null);
        });
      });
      req.on("timeout", () => req.destroy(new EmulatorError(`${method} ${path}: no answer within 10 s`)));
      req.on("error", reject);
      req.end(data);
    });
  }

  /** The request log (secrets redacted). */
  requests() {
    return this.control("GET", "/requests");
  }

  /** Installs a fault in the `--fault` short form (e.g. `status@token,status=503,times=1`). */
  addFault(spec) {
    return this.control("POST", "/faults", { spec });
  }

  clearFaults() {
    return this.control("DELETE", "/faults");
  }

  /** Revokes a principal for continuous access evaluation; resolves to the revocation time. */
  async revoke(subject) {
    return (await this.control("POST", "/revoke", { subject })).revoked_at_epoch;
  }

  /** The user codes waiting for a user. */
  async pendingDeviceCodes() {
    return (await this.control("GET", "/device-codes")).device_codes.map((d) => d.user_code);
  }

  /** Approves a device code as `user` (UPN or object id) would on the device login page. */
  approveDeviceCode(userCode, user) {
    return this.control("POST", "/device-codes/approve", { user_code: userCode, user });
  }

  /** Back to the starting seed; clears the log, faults, revocations and clock offset. */
  reset() {
    return this.control("POST", "/reset");
  }

  /** Stops the emulator (at most 15 s) and removes its temporary state. */
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 15000);
      await exited;
      clearTimeout(timer);
    }
    if (this.ownsWorkdir) rmSync(this.workdir, { recursive: true, force: true });
  }
}
