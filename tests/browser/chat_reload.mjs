// The chat demo in a real browser: send a message, reload the page while the answer streams,
// and check that the page ends with the whole answer, nothing lost or repeated.
//
//   node chat_reload.mjs /path/to/chat_server
//
// Starts chat_server on a free loopback port, drives Debian's headless Chromium with
// playwright-core, and compares the answer on the page with the run's events as the server
// stored them. Exit 0 on success, 1 on failure, 77 when Chromium is missing (a failure when
// CI=true). Set RIVER_SCREENSHOT=file.png to keep a screenshot of the final page.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SKIP = 77;
const serverPath = process.argv[2];
const chromiumPath = process.env.RIVER_CHROMIUM || '/usr/bin/chromium';
const inCI = process.env.CI === 'true';

let server = null;
let context = null;
let userDataDir = null;

async function cleanup() {
  if (context) await context.close().catch(() => {});
  if (server && server.exitCode === null) server.kill('SIGTERM');
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}

function fail(message) {
  console.error('FAILED: ' + message);
  console.log('0 passed, 1 failed');
  cleanup().finally(() => process.exit(1));
}

// Everything is bounded: the whole test has two minutes.
setTimeout(() => fail('the test did not finish within 120 s'), 120_000).unref();

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// Starts chat_server on a free port; resolves with its base URL once it prints it.
function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(serverPath, ['--host', '127.0.0.1', '--port', '0', '--delay-ms', '50'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error('chat_server exited with ' + code)));
    server.on('error', reject);
  });
}

// The run's answer as the server stored it: every chunk of a resume from the start, read the
// way the TypeScript client reads it.
async function storedAnswer(base, token) {
  const res = await fetch(base + '/api/river?resumeKey=' + encodeURIComponent(token));
  check(res.ok, 'resume answered ' + res.status);
  const body = await res.text();
  let text = '';
  let chunks = 0;
  let total = -1;
  for (const message of body.split('\n\n')) {
    if (!message.trim().startsWith('data: ')) continue;
    const event = JSON.parse(message.replace('data: ', '').trim());
    if (event.type === 'chunk') {
      text += event.chunk.text;
      ++chunks;
    } else if (event.type === 'special' && event.special.RIVER_SPECIAL_TYPE_KEY === 'stream_end') {
      total = event.special.totalChunks;
    }
  }
  check(total === chunks, `stream_end counts ${total} chunks, the stream had ${chunks}`);
  return text;
}

async function main() {
  if (!serverPath || !fs.existsSync(serverPath)) throw new Error('usage: node chat_reload.mjs /path/to/chat_server');
  if (!fs.existsSync(chromiumPath)) {
    if (inCI) throw new Error(`Chromium is missing at ${chromiumPath} (install Debian's chromium)`);
    console.log(`skipped: Chromium is missing at ${chromiumPath}`);
    process.exit(SKIP);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    if (inCI) throw new Error('playwright-core is missing: run `npm ci` in tests/browser');
    console.log('skipped: playwright-core is missing (run `npm ci` in tests/browser)');
    process.exit(SKIP);
  }
  const base = await startServer();
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'river-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] || (await context.newPage());
  const requests = [];
  page.on('request', (r) => requests.push(r.method() + ' ' + r.url()));

  await page.goto(base + '/');
  await page.fill('#message', 'Hello from a real browser');
  await page.click('#send');

  // Some of the answer is on the page, not all of it: reload now.
  await page.waitForFunction(() => document.querySelector('#answer').textContent.split(' ').length >= 8,
                             null, { timeout: 20_000 });
  const beforeReload = await page.textContent('#answer');
  check((await page.getAttribute('#status', 'data-state')) === 'streaming', 'the answer ended before the reload');
  await page.reload();

  // After the reload the page shows what it had, resumes after its last position, and finishes.
  await page.waitForSelector('#status[data-state="done"]', { timeout: 30_000 });
  const shown = await page.textContent('#history .turn:last-child .answer');
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('river-chat')).history.at(-1).token);
  check(typeof token === 'string' && token.length > 0, 'the page kept no resumption token');

  const resumed = requests.filter((r) => r.startsWith('GET ') && r.includes('resumeKey=') && r.includes('lastEventId='));
  check(resumed.length >= 1, 'the page did not resume with lastEventId: ' + JSON.stringify(requests));

  const expected = await storedAnswer(base, token);
  check(expected.startsWith('You said: "Hello from a real browser". '), 'unexpected answer: ' + expected);
  check(expected.startsWith(beforeReload.trimEnd()) || beforeReload.startsWith(expected.slice(0, beforeReload.length)),
        'the answer before the reload is not a prefix of the stored one');
  check(beforeReload.length < expected.length, 'the reload did not happen mid-answer');
  check(shown === expected, `the page shows\n  ${JSON.stringify(shown)}\nthe server stored\n  ${JSON.stringify(expected)}`);

  if (process.env.RIVER_SCREENSHOT) await page.screenshot({ path: process.env.RIVER_SCREENSHOT, fullPage: true });
  console.log(`chat answer of ${expected.length} characters survived a reload after ${beforeReload.length}`);
  console.log('1 passed, 0 failed');
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (e) => fail(e && e.stack ? e.stack : String(e)),
);
