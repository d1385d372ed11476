#!/usr/bin/env node
// Screenshot of the emolens demo (www/dist) in headless Chromium, for eyeballing the overlay.
//
//   node tests/browser/screenshot.mjs [--backend auto|webgpu|cpu] [--input sample|photo]
//        [--frames 3] [--out target/demo-screenshot.png] [--timeout 600]
//
// Serves www/dist on a free port, opens the demo, waits until `--frames` frames are analysed
// (window.__emolens.frames), takes a full-page screenshot and prints the status line.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS } from './harness.mjs';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { createServer } = require(path.join(ROOT, 'scripts', 'serve.js'));

const o = { backend: 'auto', input: 'sample', frames: 3, out: path.join(ROOT, 'target', 'demo-screenshot.png'), timeout: 600 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in o)) throw new Error(`unknown argument ${argv[i]}`);
  o[k] = typeof o[k] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}

const server = createServer({ root: path.join(ROOT, 'www', 'dist') });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/?backend=${o.backend}&input=${o.input}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emolens-chromium-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1200, height: 820 },
  args: CHROMIUM_ARGS,
});
let code = 0;
try {
  const page = await ctx.newPage();
  page.on('console', (m) => console.log(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[pageerror] ${e.message}`));
  await page.goto(url);
  const t0 = Date.now();
  await page.waitForFunction(
    (n) => window.__emolens && (window.__emolens.error || window.__emolens.frames >= n),
    o.frames,
    { timeout: o.timeout * 1000, polling: 250 },
  );
  const st = await page.evaluate(() => ({ error: window.__emolens.error, frames: window.__emolens.frames, status: document.getElementById('status').textContent }));
  console.log(`after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${st.frames} frames analysed; status: ${st.status}`);
  if (st.error) {
    console.log(`page error: ${st.error}`);
    code = 1;
  }
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  await page.screenshot({ path: o.out, fullPage: true });
  console.log(`screenshot: ${o.out}`);
} catch (e) {
  console.log(`screenshot failed: ${e.message}`);
  code = 1;
} finally {
  await ctx.close();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
