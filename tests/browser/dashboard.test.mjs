// The dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core (never a downloaded browser). Starts the real acceptd
// binary on a free loopback port, submits jobs through the API and checks
// that an operator sees and acts on them in the UI:
//   - jobs submitted through the API appear on the Jobs page live (no reload);
//   - a search by a JSON payload field finds one job; opening it shows its payload;
//   - a running job is canceled from its page and its state changes there;
//   - a queue is paused from the Overview (and the API agrees);
//   - the failed jobs are selected and retried together (bulk);
//   - with API keys, the page asks for one and then works with it (a second server);
//   - a screenshot of each page is saved under build/browser-screenshots/.
//
// Run by ctest (label `browser`) with ACCEPTD_BINARY and SCREENSHOT_DIR set;
// by hand: `node tests/browser/dashboard.test.mjs` after building.
// Exit codes: 0 passed, 1 failed, 77 skipped (no Chromium or no
// playwright-core here; with CI=true that is a failure instead).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BINARY = process.env.ACCEPTD_BINARY || join(root, 'build/acceptd');
const SHOTS = process.env.SCREENSHOT_DIR || join(root, 'build/browser-screenshots');
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const SKIP = 77;

function skipOrFail(why) {
  if (IN_CI) {
    console.error(`FAIL: ${why} (CI=true: the browser test must run in CI; scripts/install-deps.sh installs it)`);
    process.exit(1);
  }
  console.log(`SKIP: ${why}. Install it with scripts/install-deps.sh (Debian chromium, npm ci in tests/browser).`);
  process.exit(SKIP);
}

if (!existsSync(CHROMIUM)) skipOrFail(`no Chromium at ${CHROMIUM}`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skipOrFail('playwright-core is not installed in tests/browser (npm ci --prefix tests/browser)');
}
if (!existsSync(BINARY)) {
  console.error(`FAIL: no acceptd binary at ${BINARY} (set ACCEPTD_BINARY)`);
  process.exit(1);
}

const started = Date.now();
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${text}`);
function check(cond, text) {
  if (!cond) throw new Error(`check failed: ${text}`);
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitFor(what, fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

// ---------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'acceptd-browser-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
writeFileSync(join(dir, 'acceptd.toml'), `
[server]
listen = "127.0.0.1:${port}"
store = "sqlite:${join(dir, 'acceptd.db')}"
shutdown_grace = 0  # the test ends with a sleep job running: do not wait for it

[queues.echo]
handler = "echo"

[queues.sleep]
handler = "sleep"
concurrency = 2

[queues.fail]
handler = "fail"
max_attempts = 1

# Shown on the Schedules page; it never fires during the test.
[[schedules]]
name = "nightly-report"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
queue = "echo"
payload = '{"kind":"daily"}'
content_type = "application/json"
`);
let serverLog = '';
const servers = [];
function startServer(config) {
  const proc = spawn(BINARY, ['serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { serverLog += d; });
  proc.stderr.on('data', (d) => { serverLog += d; });
  servers.push(proc);
  return proc;
}
startServer(join(dir, 'acceptd.toml'));
let browser;
let failed = false;

async function call(method, path, body, type = 'application/json') {
  const res = await fetch(base + path, { method, headers: body !== undefined ? { 'Content-Type': type } : {}, body, redirect: 'manual' });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, json, text };
}
const submit = async (queue, payload) => {
  const r = await call('POST', `/v1/queues/${queue}/jobs`, JSON.stringify(payload));
  check(r.status === 202, `submit to ${queue}: HTTP ${r.status} ${r.text}`);
  return r.json.id;
};

try {
  await waitFor('acceptd to answer /healthz', async () => (await fetch(base + '/healthz')).ok, 15000);
  step(`acceptd on ${base}`);
  // What this server can do (the search and stats routes may come from other branches).
  const searchable = (await call('GET', '/v1/jobs?field=customer.id&value=x&limit=1')).status === 200;
  const hasStats = (await call('GET', '/v1/stats')).status === 200;
  step(`server: field search ${searchable ? 'yes' : 'no'}, stats ${hasStats ? 'yes' : 'no'}`);

  // Some history for the pages to show.
  for (let i = 0; i < 3; i++) await submit('fail', { message: `upstream timeout #${i}`, retryable: false });

  // A fresh, empty profile (--user-data-dir) in the test's directory.
  browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 860 },
    deviceScaleFactor: 1,
  });
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  mkdirSync(SHOTS, { recursive: true });

  // /ui redirects to ui/ (relative), which serves the page.
  await page.goto(`${base}/ui`);
  check(page.url() === `${base}/ui/`, `/ui redirects to /ui/ (got ${page.url()})`);
  await page.locator('table.queues tbody tr[data-queue="echo"]').waitFor({ timeout: 10000 });
  await page.locator('#live.on').waitFor({ timeout: 10000 });
  step('overview loaded, live stream connected');

  // Jobs submitted through the API appear on the Jobs page without a reload.
  await page.click('#nav a[data-page="jobs"]');
  await page.locator('table.jobs, .empty').first().waitFor();
  const ids = [];
  for (let i = 0; i < 6; i++) {
    ids.push(await submit('echo', { customer: { id: `cust-${1000 + i}`, plan: i % 2 ? 'pro' : 'free' }, order: 5000 + i }));
  }
  for (const id of ids) await page.locator(`tr[data-id="${id}"]`).waitFor({ timeout: 10000 });
  step('6 submitted jobs appeared live on the Jobs page');
  await page.locator(`tr[data-id="${ids[5]}"][data-state="succeeded"]`).waitFor({ timeout: 10000 });
  await page.screenshot({ path: join(SHOTS, 'jobs.png') });

  // Search by a JSON payload field, open the job.
  const target = ids[3];
  await page.selectOption('select[name="kind"]', 'field');
  await page.fill('input[name="search"]', 'customer.id=cust-1003');
  await page.click('#job-filters button[type="submit"]');
  if (searchable) {
    await waitFor('the search to show only the matching job', async () =>
      (await page.locator('table.jobs tbody tr').count()) === 1 && (await page.locator(`tr[data-id="${target}"]`).count()) === 1);
    step('search by customer.id found the job');
    await page.screenshot({ path: join(SHOTS, 'jobs-search.png') });
    await page.click(`tr[data-id="${target}"] a[href="#/jobs/${target}"]`);
  } else {
    // This acceptd has no search: the page says so instead of showing wrong rows.
    await page.locator('.empty', { hasText: 'not possible' }).waitFor();
    step('this server has no field search: the page says so (search step checked as far as possible)');
    await page.goto(`${base}/ui/#/jobs/${target}`);
  }
  await page.locator('.page-head .badge.state-succeeded').waitFor({ timeout: 10000 });
  await page.locator('.preview pre.code', { hasText: 'cust-1003' }).first().waitFor({ timeout: 10000 });
  step('job detail shows the payload');
  await page.screenshot({ path: join(SHOTS, 'job.png'), fullPage: true });

  // Cancel a running job from its page.
  const slow = await submit('sleep', { ms: 60000 });
  await page.goto(`${base}/ui/#/jobs/${slow}`);
  await page.locator('.page-head .badge.state-running').waitFor({ timeout: 10000 });
  await page.screenshot({ path: join(SHOTS, 'job-running.png'), fullPage: true });
  await page.click('#job-cancel');
  await page.click('#confirm-ok');
  await page.locator('.page-head .badge.state-canceled').waitFor({ timeout: 10000 });
  const after = await call('GET', `/v1/jobs/${slow}`);
  check(after.json.state === 'canceled', `the API says canceled (got ${after.json.state})`);
  step('running job canceled from the UI');

  // Pause a queue from the overview.
  await submit('sleep', { ms: 20000 });  // something running on the overview
  await page.click('#nav a[data-page="overview"]');
  const echoRow = page.locator('table.queues tbody tr[data-queue="echo"]');
  await echoRow.getByRole('button', { name: 'Pause' }).click();
  await echoRow.locator('.badge.paused').waitFor({ timeout: 10000 });
  const queues = await call('GET', '/v1/queues');
  check(queues.json.queues.find((q) => q.name === 'echo').paused === true, 'the API says echo is paused');
  step('queue paused from the UI');
  // Queued jobs of the paused queue show up live in the counts.
  await submit('echo', { customer: { id: 'cust-paused' } });
  await echoRow.locator('a.count-queued').waitFor({ timeout: 10000 });
  if (hasStats) await page.locator('svg.chart rect.bar').first().waitFor({ timeout: 10000 });
  await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });

  await page.click('#nav a[data-page="jobs"]');
  await page.selectOption('select[name="state"]', 'failed');
  await page.locator('tr[data-state="failed"]').first().waitFor();
  await page.screenshot({ path: join(SHOTS, 'jobs-failed.png') });
  // Bulk: select every failed job, retry them (they fail again: max_attempts = 1).
  await page.check('table.jobs thead input[type="checkbox"]');
  await page.locator('.bulk', { hasText: '3 selected' }).waitFor();
  await page.screenshot({ path: join(SHOTS, 'jobs-bulk.png') });
  await page.locator('.bulk').getByRole('button', { name: 'Retry' }).click();
  await page.click('#confirm-ok');
  await page.locator('.toast', { hasText: 'Retry: 3 jobs done' }).waitFor({ timeout: 10000 });
  const retried = await call('GET', '/v1/jobs?queue=fail');
  check(retried.json.jobs.every((j) => j.attempts === 2 || j.state === 'queued' || j.state === 'running'),
    `every failed job was retried: ${JSON.stringify(retried.json.jobs.map((j) => [j.state, j.attempts]))}`);
  step('bulk retry of the failed jobs');

  await page.goto(`${base}/ui/#/schedules`);
  await page.locator('main .panel').waitFor();
  await page.locator('main .panel table').first().waitFor({ timeout: 10000 });
  check((await page.locator('main').innerText()).includes('nightly-report'), 'the schedule is listed');
  await page.screenshot({ path: join(SHOTS, 'schedules.png') });

  // With API keys: the page asks for one (kept in sessionStorage), then works.
  const keyPort = await freePort();
  const key = 'acd_' + randomBytes(24).toString('base64url');
  writeFileSync(join(dir, 'keys.toml'), `
[server]
listen = "127.0.0.1:${keyPort}"
store = "sqlite:${join(dir, 'keys.db')}"

[[api_keys]]
name = "ops"
sha256 = "${createHash('sha256').update(key).digest('hex')}"
scopes = ["admin"]
`);
  startServer(join(dir, 'keys.toml'));
  const keyBase = `http://127.0.0.1:${keyPort}`;
  await waitFor('the keyed acceptd to answer /healthz', async () => (await fetch(keyBase + '/healthz')).ok, 15000);
  const keyed = await browser.newPage();
  await keyed.goto(`${keyBase}/ui/`);
  await keyed.locator('#key-dialog[open]').waitFor({ timeout: 10000 });
  await keyed.screenshot({ path: join(SHOTS, 'key.png') });
  await keyed.fill('#key-input', 'acd_wrong');
  await keyed.click('#key-form button');
  await keyed.locator('#key-error', { hasText: 'refused' }).waitFor({ timeout: 10000 });
  await keyed.fill('#key-input', key);
  await keyed.click('#key-form button');
  await keyed.locator('table.queues tbody tr').first().waitFor({ timeout: 10000 });
  await keyed.locator('#live.on').waitFor({ timeout: 10000 });
  check(await keyed.evaluate(() => sessionStorage.getItem('acceptd.apiKey')) === key, 'the key is kept in sessionStorage');
  step('with API keys: the page asked for one, refused a wrong one, then worked (live too)');

  check(consoleErrors.filter((e) => !/status of 40[0134]/.test(e)).length === 0, `no errors in the page: ${consoleErrors.join(' | ')}`);
  step(`passed; screenshots in ${SHOTS}`);
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack || e}`);
  console.error('--- acceptd log ---\n' + serverLog.slice(-4000));
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const proc of servers) {
    proc.kill('SIGTERM');
    await new Promise((r) => { if (proc.exitCode !== null) r(); else proc.once('exit', r); });
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
