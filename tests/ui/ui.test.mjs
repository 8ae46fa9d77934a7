// Browser tests of the web UI: the real relay binary on a three-stage
// config (receive_http -> relabel -> write + archive, and a write with a
// queue whose backend is down), a recording backend,
// curl as the agent, and Debian's Chromium driven by playwright-core.
// Screenshots of every page go to $CARGO_TARGET_DIR/ui-screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TARGET = path.resolve(REPO, process.env.CARGO_TARGET_DIR || "target");
const RELAY_BIN = process.env.E2E_RELAY_BIN || path.join(TARGET, "debug", "pyroscope-relay");
const SHOTS = path.join(TARGET, "ui-screenshots");
const FIXTURES = path.join(REPO, "tests", "fixtures");
const CHROMIUM_FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];
const XSS = "<img src=x onerror=alert(1)>";

let work, relay, relayLog = "", backend, browser, ingestPort, adminPort, downPort;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(check, what, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await check()) return; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- relay log ---\n${relayLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// An /ingest request the way an agent sends it, with curl. Asynchronous:
// the recording backend answers from this same process.
async function ingest(name, file = "py_cpu.pb", format = "pprof") {
  const url = `http://127.0.0.1:${ingestPort}/ingest?name=${encodeURIComponent(name)}&format=${format}`;
  const { stdout: code } = await promisify(execFile)("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
    "-H", "Content-Type: binary/octet-stream", "--data-binary", "@" + path.join(FIXTURES, file), url]);
  assert.equal(code, "200", `ingest ${name} answered ${code}\n${relayLog}`);
}

async function listProfiles() {
  const r = await fetch(`http://127.0.0.1:${adminPort}/api/v1/profiles`);
  return (await r.json()).profiles;
}

// A page that fails the test on any console error or script dialog.
async function openPage(hash) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("dialog", (d) => { problems.push("dialog: " + d.message()); d.dismiss(); });
  await page.goto(`http://127.0.0.1:${adminPort}/${hash}`);
  return { page, problems };
}

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), "relay-ui-"));
  mkdirSync(SHOTS, { recursive: true });
  backend = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => { res.writeHead(200); res.end(); });
  });
  await new Promise((r) => backend.listen(0, "127.0.0.1", r));
  ingestPort = await freePort();
  downPort = await freePort(); // nothing listens: the queue keeps a backlog
  adminPort = await freePort();
  writeFileSync(path.join(work, "relay.alloy"), `
pyroscope.receive_http "default" {
  http {
    listen_address = "127.0.0.1"
    listen_port = ${ingestPort}
  }
  forward_to = [pyroscope.relabel.tag.receiver]
}

pyroscope.relabel "tag" {
  forward_to = [pyroscope.write.backend.receiver, pyroscope.archive.local.receiver, pyroscope.write.queued.receiver]
  rule {
    source_labels = ["service_name"]
    regex = "dropped-by-rule.*"
    action = "drop"
  }
}

pyroscope.write "backend" {
  endpoint {
    url = "http://127.0.0.1:${backend.address().port}"
    basic_auth {
      username = "relay"
      password = "do-not-show-me"
    }
  }
}

pyroscope.write "queued" {
  endpoint {
    url = "http://127.0.0.1:${downPort}"
  }
  queue { }
}

pyroscope.archive "local" {
  retention = "1h"
}
`);
  relay = spawn(RELAY_BIN, ["run", path.join(work, "relay.alloy"),
    "--server.http.listen-addr", `127.0.0.1:${adminPort}`, "--storage.path", path.join(work, "data")]);
  relay.stdout.on("data", (d) => { relayLog += d; });
  relay.stderr.on("data", (d) => { relayLog += d; });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/-/ready`)).ok, "the relay to be ready");
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_FLAGS });
});

after(async () => {
  if (browser) await browser.close();
  if (relay) relay.kill("SIGTERM");
  if (backend) backend.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the components page shows every component with its health, and no console errors", async () => {
  const { page, problems } = await openPage("#/components");
  const ids = ["pyroscope.receive_http.default", "pyroscope.relabel.tag", "pyroscope.write.backend",
    "pyroscope.write.queued", "pyroscope.archive.local"];
  for (const id of ids) {
    const row = page.locator(`#components tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 5000 });
    assert.equal(await row.locator(".badge").textContent(), "healthy");
    await page.locator(`svg.graph g.node[data-id="${id}"]`).waitFor({ timeout: 5000 });
  }
  // Edges follow forward_to.
  assert.equal(await page.locator("svg.graph path.edge").count(), 4);
  await ingest("checkout.cpu{env=prod}");
  // The queued write's backlog shows for its endpoint after a refresh.
  await page.locator('svg.graph g.node[data-id="pyroscope.write.queued"]', { hasText: "1 profiles" })
    .waitFor({ timeout: 10000 });
  assert.match(await page.locator('#components tr[data-id="pyroscope.relabel.tag"]').textContent(), /in \d/);
  await page.screenshot({ path: path.join(SHOTS, "components.png") });
  // The README's picture (docs/ui-components.png) is a copy of this one.
  await page.locator("svg.graph").screenshot({ path: path.join(SHOTS, "components-graph.png") });

  await page.goto(`http://127.0.0.1:${adminPort}/#/component/pyroscope.write.backend`);
  await page.locator("#metrics").waitFor();
  const args = await page.locator(".args").first().textContent();
  assert.match(args, /password = \(secret\)/);
  assert.doesNotMatch(await page.content(), /do-not-show-me/);
  await page.screenshot({ path: path.join(SHOTS, "component.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("a profile sent with curl appears in the live tap within 2 s; a matcher that excludes it hides it", async () => {
  const { page, problems } = await openPage("#/tap?component=pyroscope.receive_http.default");
  await page.locator("#tap-status", { hasText: "watching" }).waitFor();
  const sent = Date.now();
  await ingest("tap-check.cpu{env=prod,region=eu}");
  const row = page.locator("#tap-rows tr", { hasText: "tap-check.cpu" });
  await row.waitFor({ timeout: 2000 });
  assert.ok(Date.now() - sent < 2000);
  assert.equal(await row.locator("td.service").textContent(), "tap-check.cpu");
  assert.match(await row.textContent(), /pyroscope\.relabel\.tag: ok/);
  await page.screenshot({ path: path.join(SHOTS, "tap.png") });

  await page.fill("#tap-match", '{service_name=~"wanted.*"}');
  await page.click("#tap-start");
  await page.locator("#tap-status", { hasText: "watching" }).waitFor();
  await page.click("button:has-text('Clear')");
  await ingest("excluded.cpu{env=prod}");
  await ingest("wanted.cpu{env=prod}");
  await page.locator("#tap-rows tr", { hasText: "wanted.cpu" }).waitFor({ timeout: 2000 });
  assert.equal(await page.locator("#tap-rows tr", { hasText: "excluded.cpu" }).count(), 0);

  await page.fill("#tap-match", '{service_name="unclosed}');
  await page.click("#tap-start");
  await page.locator("#tap-error", { hasText: "quoted value is not closed" }).waitFor();
  assert.deepEqual(problems.filter((p) => !p.includes("400")), []);
  await page.close();
});

test("an archived agent profile opens as a flame graph with its functions", async () => {
  await ingest("flame.cpu{env=demo}");
  const id = (await listProfiles()).find((p) => p.service === "flame.cpu").id;
  const { page, problems } = await openPage(`#/profile/${id}`);
  // py_cpu.pb is the Python agent's CPU profile of fib, work_a and work_b.
  await page.locator('.flame .bar[data-name="work_b"]').first().waitFor({ timeout: 5000 });
  await page.locator('.flame .bar[data-name="fib"]').first().waitFor();
  assert.equal(await page.locator("#sample-type").inputValue(), "cpu");
  await page.fill("#flame-search", "fib");
  assert.match(await page.locator("#flame-info").textContent(), /"fib": \d+\.\d+%/);
  await page.screenshot({ path: path.join(SHOTS, "flamegraph.png") });
  await page.locator('.flame .bar[data-name="work_a"]').first().click();
  assert.match(await page.locator("#flame-info").textContent(), /zoomed into work_a/);

  // A gzipped Node heap profile, with its sample types to choose from.
  await ingest("node-heap.inuse_space{}", "node_heap.pb.gz");
  const heap = (await listProfiles()).find((p) => p.service === "node-heap.inuse_space").id;
  await page.goto(`http://127.0.0.1:${adminPort}/#/profile/${heap}?sample_type=inuse_objects`);
  await page.locator(".flame .bar").first().waitFor();
  assert.equal(await page.locator("#sample-type").inputValue(), "inuse_objects");

  await page.goto(`http://127.0.0.1:${adminPort}/#/profiles`);
  await page.locator("#profiles").waitFor();
  await page.screenshot({ path: path.join(SHOTS, "profiles.png") });
  assert.deepEqual(problems, []);
  await page.close();
});

test("a hostile label value renders as text and runs nothing", async () => {
  const { page, problems } = await openPage("#/tap?component=pyroscope.archive.local");
  await page.locator("#tap-status", { hasText: "watching" }).waitFor();
  await ingest(`xss.cpu{evil=${XSS}}`);
  const row = page.locator("#tap-rows tr", { hasText: "xss.cpu" });
  await row.waitFor({ timeout: 2000 });
  assert.ok((await row.textContent()).includes(XSS));
  assert.equal(await page.locator("main img").count(), 0);
  await page.screenshot({ path: path.join(SHOTS, "tap-hostile.png") });

  await page.goto(`http://127.0.0.1:${adminPort}/#/profiles`);
  await page.locator("#profiles").waitFor();
  assert.ok((await page.locator("#profiles").textContent()).includes(XSS));
  assert.equal(await page.locator("main img").count(), 0);
  await page.waitForTimeout(300);
  assert.deepEqual(problems, []);
  await page.close();
});
