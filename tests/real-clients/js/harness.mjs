// What the JS real-client checks share: start the emulator binary, run the cases in a child
// process with the environment they need (NODE_EXTRA_CA_CERTS and proxy variables are read only
// at process start), print one line per case and "N passed, M failed".
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Runs `cases` (name -> async (ready) => detail); `expect[name]` is an expected error fragment. */
export async function runCases(ready, cases, expect = {}) {
  for (const [name, run] of Object.entries(cases)) {
    const started = Date.now();
    let good;
    let detail;
    try {
      detail = await run(ready);
      good = !expect[name];
    } catch (e) {
      detail = `${e.name}: ${e.message}`.replace(/\s+/g, " ").slice(0, 300);
      good = Boolean(expect[name]) && detail.includes(expect[name]);
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    console.log(`${good ? "PASS" : "FAIL"} ${name.padEnd(32)} ${seconds.padStart(5)}s  ${detail}`);
  }
}

/**
 * The check's entry point. With `--run READY_FILE` (the child) runs the cases; otherwise starts
 * `--emulator`, then re-runs `script` as a child with `childEnv(ready)`, and reports.
 */
export async function main({ script, prefix, cases, expect, banner, childEnv }) {
  const args = process.argv.slice(2);
  const flag = (n) => (args.includes(n) ? args[args.indexOf(n) + 1] : undefined);
  if (flag("--run")) return runCases(JSON.parse(readFileSync(flag("--run"), "utf8")), cases, expect);
  const workdir = mkdtempSync(join(tmpdir(), prefix));
  const readyPath = join(workdir, "ready.json");
  const child = spawn(flag("--emulator"), ["--https-port", "0", "--http-port", "0", "--service-fabric-port", "0",
    "--state-dir", join(workdir, "state"), "--ready-file", readyPath], { stdio: "ignore" });
  let passed = 0;
  let failed = 0;
  try {
    const deadline = Date.now() + 60000;
    while (!existsSync(readyPath)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error("the emulator did not become ready");
      await new Promise((r) => setTimeout(r, 50));
    }
    const ready = JSON.parse(readFileSync(readyPath, "utf8"));
    console.log(banner(ready));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...childEnv(ready) };
    const result = spawnSync(process.execPath, [script, "--run", readyPath],
      { env, encoding: "utf8", timeout: 120000 });
    process.stdout.write(result.stdout);
    if (result.status !== 0) process.stdout.write(result.stderr.slice(-2000));
    passed = (result.stdout.match(/^PASS/gm) || []).length;
    failed = (result.stdout.match(/^FAIL/gm) || []).length;
    if (passed + failed !== Object.keys(cases).length) failed = Object.keys(cases).length - passed;
  } finally {
    child.kill();
    rmSync(workdir, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

/** The installed version of `pkg` (from node_modules next to this file). */
export function version(pkg) {
  return JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;
}
