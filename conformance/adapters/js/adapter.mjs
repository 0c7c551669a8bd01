// Conformance adapter for JavaScript's @azure/identity (JSON-lines protocol, see
// conformance/src/process_adapter.rs and conformance/README.md).
//
// The package is loaded from AZURE_IDENTITY_JS_DIR (default: tests/real-clients/js, where
// `npm ci` installs the pinned version). Scenarios run in child Node processes, each scenario
// as it would in a fresh one: the child was started with the scenario's NODE_* variables (Node
// reads NODE_EXTRA_CA_CERTS only at start), process.env is exactly the scenario's environment
// (@azure/identity reads it at construction), every package is evaluated afresh, and what the
// scenario left running (timers, connections) is ended before the next. A child that cannot be
// brought back to that state (a child process still running, a new global, a new process
// listener) answers and exits; the next scenario gets a new one. With the packages' compiled
// code kept (reuseCompiledModules), the JavaScript cases of the whole matrix take 10 s of CPU
// instead of 27 s with a new Node process per scenario. CONFORMANCE_JS_TRACE=FILE appends a line per scenario to FILE: which child ran
// it, whether that child was new, and why a child retired.
import { spawn } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Socket } from "node:net";
import { format } from "node:util";
import { compileFunction } from "node:vm";

const HERE = dirname(fileURLToPath(import.meta.url));
// A child has the scenario's environment, so the parent names the folder on its command line.
const SERVE = process.argv.indexOf("--serve");
const PACKAGE_DIR = SERVE > 0
  ? process.argv[SERVE + 1]
  : resolve(process.env.AZURE_IDENTITY_JS_DIR || join(HERE, "../../../tests/real-clients/js"));
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

// Node reads these only when it starts, so a warm child serves only scenarios that agree on them.
const PROCESS_START_VARS = /^(NODE_|UV_|SSL_CERT_|OPENSSL_)/;
// A warm child retires after this many scenarios (bounds what old module copies could hold).
const MAX_CASES_PER_CHILD = 40;
// Warm children one adapter copy keeps (one per distinct start environment, least recently used out).
const MAX_WARM_CHILDREN = 3;

function startKey(env) {
  return JSON.stringify(Object.keys(env).filter((k) => PROCESS_START_VARS.test(k)).sort().map((k) => [k, env[k]]));
}

// Runs one scenario in this (child) process: the scenario's environment and folder, and
// @azure/identity and everything it requires evaluated afresh, so no module state (msal-node's
// managed-identity source, caches, agents) survives from an earlier scenario.
async function runCase(request) {
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, request.env);
  process.chdir(request.work_dir);
  const require = createRequire(join(PACKAGE_DIR, "package.json"));
  for (const name of Object.keys(require.cache)) delete require.cache[name];
  const logs = [];
  const { AzureLogger, setLogLevel } = require("@azure/logger");
  AzureLogger.log = (...args) => logs.push(format(...args));
  setLogLevel("verbose");
  const identity = require("@azure/identity");
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
  return result;
}

// What a scenario may leave behind that a process exit would end: timers it started.
function trackTimers() {
  const live = new Set();
  const wrap = (name) => {
    const original = globalThis[name];
    const wrapper = function (...args) {
      const timer = original.apply(this, args);
      live.add(timer);
      return timer;
    };
    Object.defineProperties(wrapper, Object.getOwnPropertyDescriptors(original));
    globalThis[name] = wrapper;
  };
  wrap("setTimeout");
  wrap("setInterval");
  return live;
}

function counts(list) {
  const map = new Map();
  for (const item of list) map.set(item, (map.get(item) || 0) + 1);
  return map;
}

function settling(before) {
  for (const [kind, count] of counts(process.getActiveResourcesInfo())) {
    if (count > (before.resources.get(kind) || 0)) return true;
  }
  return false;
}

function listenerCounts() {
  return new Map(process.eventNames().map((name) => [name, process.listenerCount(name)]));
}

// Node's own connection pool for fetch(), created on first use; endCase closes its connections.
const FETCH_DISPATCHER = Symbol.for("undici.globalDispatcher.1");

// The state of this process that a scenario must not change for the next one, taken once the
// packages have been loaded (tslib, which they all use, defines its helpers as globals).
function baseline() {
  const require = createRequire(join(PACKAGE_DIR, "package.json"));
  require("@azure/logger");
  require("@azure/identity");
  for (const name of Object.keys(require.cache)) delete require.cache[name];
  const globals = new Set(Reflect.ownKeys(globalThis));
  globals.add(FETCH_DISPATCHER);
  void process.stdout, process.stderr; // their pipes open on first use
  return { globals, listeners: listenerCounts(), resources: counts(process.getActiveResourcesInfo()) };
}

// Ends what the scenario left running, as its process's exit would: its timers and connections.
// Returns why this process must not serve another scenario, or null.
async function endCase(timers, before) {
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  const stdio = new Set([process.stdin, process.stdout, process.stderr]);
  const open = () => process._getActiveHandles().filter((handle) => !stdio.has(handle));
  for (const handle of open()) if (handle instanceof Socket) handle.destroy();
  // Destroyed sockets close within a few turns of the event loop (a TLS shutdown takes one more),
  // as does a child process that has just exited.
  for (let turn = 0; turn < 20 && settling(before); turn++) await new Promise((done) => setImmediate(done));
  const others = open().map((handle) => handle?.constructor?.name || typeof handle);
  if (others.length) return `left running: ${others.join(", ")}`;
  const globals = Reflect.ownKeys(globalThis).filter((key) => !before.globals.has(key));
  if (globals.length) return `added globals: ${globals.map(String).join(", ")}`;
  for (const [name, count] of listenerCounts()) {
    if (count > (before.listeners.get(name) || 0)) return `added a process '${String(name)}' listener`;
  }
  for (const [kind, count] of counts(process.getActiveResourcesInfo())) {
    if (count > (before.resources.get(kind) || 0)) return `left running: ${kind}`;
  }
  return null;
}

// Evaluating the packages afresh for each scenario need not compile them again: a CommonJS
// module's compiled wrapper holds no state (each call makes a new module), so it is kept per
// file and called again, as Node's own loader would call a freshly compiled one. Files with a
// dynamic import() (which needs Node's loader hooks) are compiled by Node each time.
function reuseCompiledModules() {
  const compiled = new Map();
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    let entry = compiled.get(filename);
    if (entry?.content !== content) {
      if (/\bimport\s*\(/.test(content)) return compile.call(this, content, filename);
      try {
        const wrapper = compileFunction(content, ["exports", "require", "module", "__filename", "__dirname"], { filename });
        entry = { content, wrapper };
      } catch {
        return compile.call(this, content, filename); // Node says what is wrong with it
      }
      compiled.set(filename, entry);
    }
    const module = this;
    const require = (id) => module.require(id);
    require.resolve = (request, options) => Module._resolveFilename(request, module, false, options);
    require.resolve.paths = (request) => Module._resolveLookupPaths(request, module);
    require.main = process.mainModule;
    require.extensions = Module._extensions;
    require.cache = Module._cache;
    return entry.wrapper.call(module.exports, module.exports, require, module, filename, dirname(filename));
  };
}

// A warm child: started with the first scenario's environment, it answers scenario after
// scenario (one JSON line each) while each one leaves it as a fresh process would be.
async function serve() {
  process.stdin.on("end", () => process.exit(0));
  reuseCompiledModules();
  const timers = trackTimers();
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const iterator = lines[Symbol.asyncIterator]();
  let next = iterator.next(); // stdin is being read from here on, in the baseline too
  const before = baseline();
  for (let served = 1; ; served++) {
    const { value: line, done } = await next;
    if (done) break;
    let result;
    let reason = served >= MAX_CASES_PER_CHILD ? "served its share" : null;
    try {
      result = await runCase(JSON.parse(line));
    } catch (e) {
      // The adapter's own failure (a request it cannot read, a work folder that is gone).
      result = { message: `adapter error: ${e?.stack || e}`, logs: "" };
      reason = "the adapter failed";
    }
    reason ??= await endCase(timers, before);
    if (reason) result.retired = reason;
    process.stdout.write(JSON.stringify(result) + "\n");
    if (reason) break;
    next = iterator.next();
  }
  process.exit(0);
}

// The parent's handle on a warm child.
function startChild(env) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--serve", PACKAGE_DIR], { env, stdio: ["pipe", "pipe", "pipe"] });
  const record = { child, waiting: null, err: "", closed: false, fresh: true };
  child.stdin.on("error", () => {}); // a child that died is reported by "close"
  const finish = (result) => {
    const waiting = record.waiting;
    record.waiting = null;
    waiting?.(result);
  };
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (line) => {
    try {
      finish(JSON.parse(line));
    } catch {
      finish({ message: `the scenario's node process answered something that is not JSON: ${line.slice(0, 2000)}`, logs: record.err });
    }
  });
  child.stderr.on("data", (d) => (record.err = (record.err + d).slice(-8000)));
  child.on("error", (e) => {
    record.closed = true;
    finish({ message: `cannot start node: ${e.message}`, logs: "" });
  });
  child.on("close", () => {
    record.closed = true;
    finish({ message: `the scenario's node process gave no result: ${record.err.slice(0, 2000)}`, logs: record.err });
  });
  return record;
}

const warm = new Map();

function trace(line) {
  if (process.env.CONFORMANCE_JS_TRACE) appendFileSync(process.env.CONFORMANCE_JS_TRACE, line + "\n");
}

function runInChild(request) {
  const key = startKey(request.env);
  let record = warm.get(key);
  if (record?.closed) record = undefined;
  warm.delete(key);
  if (!record) record = startChild(request.env);
  warm.set(key, record); // most recently used last
  while (warm.size > MAX_WARM_CHILDREN) {
    const [oldest, old] = warm.entries().next().value;
    warm.delete(oldest);
    old.child.stdin.end();
  }
  return new Promise((done) => {
    record.waiting = (result) => {
      if (result.retired !== undefined || record.closed) warm.delete(key);
      trace(`${record.fresh ? "new" : "warm"} child ${record.child.pid} ran ${request.scenario}${result.retired ? `, then retired: ${result.retired}` : ""}`);
      record.fresh = false;
      delete result.retired;
      done(result);
    };
    record.child.stdin.write(JSON.stringify(request) + "\n");
  });
}

async function main() {
  if (SERVE > 0) return serve();
  if (!(await hello())) return;
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const result = await runInChild(JSON.parse(line));
    process.stdout.write(JSON.stringify(result) + "\n");
  }
  for (const record of warm.values()) record.child.stdin.end();
}

main();
