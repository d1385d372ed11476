// Shared harness for the browser tests: a local HTTP server (127.0.0.1 only), Debian's headless
// Chromium with WebGPU (SwiftShader) through playwright-core, pages that have the wasm package
// loaded as `window.emolens`, and the "ok/FAIL ... N passed, M failed" report.
//
//   import { startBrowser, record, finish } from './harness.mjs';
//   const browser = await startBrowser({ routes: (req, res) => false, mounts: { '/clips/': dir } });
//   const page = await browser.openPage('video');           // window.emolens = pkg/emolens.js, initialised
//   const vlmPage = await browser.openPage('vlm', null, '/blank.html', null, { vlm: true }); // + window.emolensVlm
//   const r = await browser.call(page, 'what', async (arg) => window.capture(() => ...), arg);
//   record('name', problems, 'info');  ...  await browser.close(); finish();
//
// Served: /pkg/ (wasm-bindgen output), /shared/ (tests/data), /assets/, /www-dist/ (webpack
// output), /tests/ (tests/browser), /models/ (the face-api models from node_modules), any extra
// `mounts`, and `routes` first.
import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import readline from 'node:readline';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// The test data (tests/data, with SOURCES.md), served as /shared/.
export const SHARED = path.join(ROOT, 'tests', 'data');
const { createHandler } = require(path.join(ROOT, 'scripts', 'serve.js'));

export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // Videos must play in a page nobody clicked on.
  '--autoplay-policy=no-user-gesture-required',
];

// ------------------------------------------------------------------ results
const cases = [];

/** Records one test case; `problems` empty means it passed. Returns whether it passed. */
export function record(name, problems, info = '') {
  const ok = problems.length === 0;
  cases.push({ name, ok, problems });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${info ? `  ${info}` : ''}`);
  for (const p of problems) console.log(`       - ${p}`);
  return ok;
}

/** Prints the failures and "N passed, M failed", then exits (1 on any failure or a non-zero code). */
export function finish(code = 0) {
  const passed = cases.filter((c) => c.ok).length;
  const failed = cases.length - passed;
  if (failed) {
    console.log('\nfailures:');
    for (const c of cases.filter((x) => !x.ok)) console.log(`  ${c.name}: ${c.problems[0]}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed || code ? 1 : 0);
}

export function withTimeout(promise, seconds, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${seconds} s`)), seconds * 1000);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Problems with a rejection captured by `window.capture`: it must be an Error with a sentence. */
export function errorProblems(res, what) {
  const e = res.error;
  const p = [];
  if (!e.isError) p.push(`${what} rejected with a ${e.name}, not an Error: ${e.message}`);
  if (!e.message || e.message.trim().length < 10) p.push(`${what}: the error message is not a sentence: ${JSON.stringify(e.message)}`);
  return p;
}

// Installed in every page before its scripts: `capture(fn)` resolves to { ok: true, value } or
// { ok: false, error: { isError, name, message } }, so the Node side sees exactly what the API
// rejected with; `toPlain` turns API results into JSON (and refuses Maps from serde-wasm-bindgen).
function pageHelpers() {
  const describe = (e) => {
    if (e instanceof Error) return { isError: true, name: e.name, message: e.message };
    let message;
    try {
      message = typeof e === 'string' ? e : JSON.stringify(e);
    } catch {
      message = String(e);
    }
    return { isError: false, name: typeof e, message: String(message) };
  };
  window.capture = async (fn) => {
    try {
      return { ok: true, value: await fn() };
    } catch (e) {
      return { ok: false, error: describe(e) };
    }
  };
  const toPlain = (v, where = 'result') => {
    if (v instanceof Map) throw new Error(`${where} is a JS Map, expected a plain object`);
    if (ArrayBuffer.isView(v)) return Array.from(v);
    if (Array.isArray(v)) return v.map((x, i) => toPlain(x, `${where}[${i}]`));
    if (v && typeof v === 'object') {
      const out = {};
      for (const [k, x] of Object.entries(v)) out[k] = toPlain(x, `${where}.${k}`);
      return out;
    }
    return v;
  };
  window.toPlain = toPlain;
}

const BLANK = '<!doctype html><meta charset="utf-8"><title>emolens test</title><body></body>';

/**
 * Starts the server and Chromium. Options: `routes(req, res)` returning true when it answered,
 * `mounts` { '/prefix/': dir }, `verbose`, `timeoutS` (per `call`), `chromium` (binary path).
 */
export async function startBrowser(options = {}) {
  const { routes = () => false, mounts = {}, verbose = false, timeoutS = 600 } = options;
  const executablePath = options.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) throw new Error(`${executablePath} not found: run scripts/setup.sh (Debian package chromium)`);
  if (!fs.existsSync(path.join(ROOT, 'pkg', 'emolens.js'))) throw new Error('pkg/emolens.js missing: run scripts/build-wasm.sh');

  const files = createHandler({
    root: path.join(ROOT, 'www', 'dist'),
    mounts: {
      '/pkg/': path.join(ROOT, 'pkg'),
      '/shared/': SHARED,
      '/assets/': path.join(ROOT, 'assets'),
      '/www-dist/': path.join(ROOT, 'www', 'dist'),
      '/tests/': path.join(ROOT, 'tests', 'browser'),
      '/models/': path.join(ROOT, 'node_modules', '@vladmandic', 'face-api', 'model'),
      ...mounts,
    },
  });
  const server = http.createServer((req, res) => {
    if (req.url === '/blank.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      return res.end(BLANK);
    }
    if (routes(req, res)) return;
    files(req, res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'emolens-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath, headless: true, args: CHROMIUM_ARGS });
  console.log(`chromium ${context.browser()?.version() ?? ''}, serving on ${base}`);

  const logs = [];
  /**
   * A fresh page with the wasm package loaded as window.emolens; `initScript` runs first, and
   * `script` (a URL such as '/tests/face-page.js') is then added as a module. With `vlm`, the
   * local VLM's module (emolens/vlm, pkg/vlm.js) is loaded too, as window.emolensVlm.
   */
  async function openPage(label, initScript, url = '/blank.html', script = null, { vlm = false } = {}) {
    const page = await context.newPage();
    page.on('console', (m) => {
      const line = `[${label} console.${m.type()}] ${m.text()}`;
      logs.push(line);
      if (verbose || m.type() === 'error') console.log(line);
    });
    page.on('pageerror', (e) => console.log(`[${label} pageerror] ${e.message}`));
    page.on('crash', () => console.log(`[${label}] page crashed`));
    await page.addInitScript(pageHelpers);
    if (initScript) await page.addInitScript(initScript);
    await page.goto(`${base}${url}`);
    await page.evaluate(async () => {
      const module = await import('/pkg/emolens.js');
      await module.default({ module_or_path: '/pkg/emolens_bg.wasm' });
      window.emolens = module;
    });
    if (vlm) {
      await page.evaluate(async () => {
        const module = await import('/pkg/vlm.js');
        await module.default({ module_or_path: '/pkg/emolens_vlm_bg.wasm' });
        window.emolensVlm = module;
      });
    }
    if (script) await page.addScriptTag({ type: 'module', url: script });
    return page;
  }
  const call = (page, what, fn, arg) => withTimeout(page.evaluate(fn, arg), timeoutS, what);
  async function close() {
    await context.close().catch(() => {});
    server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  return { base, context, openPage, call, close, logs };
}

// ------------------------------------------------------------------ the fake VLM server
/** examples/fake_vlm_server, built by cargo (a no-op after `cargo test --release`), or FAKE_VLM_SERVER. */
function fakeServerBinary() {
  if (process.env.FAKE_VLM_SERVER) return process.env.FAKE_VLM_SERVER;
  const out = execFileSync('cargo', ['build', '--release', '--example', 'fake_vlm_server', '--message-format=json-render-diagnostics'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const m = JSON.parse(line);
    if (m.reason === 'compiler-artifact' && m.target?.name === 'fake_vlm_server' && m.executable) return m.executable;
  }
  throw new Error('cargo built no fake_vlm_server executable');
}

/** Starts the fake OpenAI-compatible server: `{ base, seen(), stats(), stop() }` (see its doc comment). */
export async function startFakeServer() {
  const child = spawn(fakeServerBinary(), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const first = await withTimeout(new Promise((resolve) => lines.once('line', resolve)), 30, 'fake VLM server start');
  const base = first.replace(/^listening /, '');
  const json = async (p) => (await fetch(`${base}${p}`)).json();
  return { base, seen: () => json('/seen'), stats: () => json('/stats'), stop: () => child.stdin.end() };
}
