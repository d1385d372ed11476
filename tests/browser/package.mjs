#!/usr/bin/env node
// The npm package as a user gets it: `npm pack` of pkg/ (assembled by scripts/package.sh),
// installed offline into a scratch webpack project, whose entry is the README's example verbatim;
// the project is built with no webpack configuration beyond entry and output, type-checked against
// the installed package's types, and run in headless Chromium on the bundled clip.
//
//   node tests/browser/package.mjs [--verbose] [--keep]
//
// Checks: the tarball holds exactly the package's files (no test or build leftovers); the install
// needs no network; webpack emits the .wasm by itself; the README example type-checks (tsc,
// checkJs) through the package's `exports` and `types`; in the page it analyses the clip (events,
// summaries, a prompt with tokens) with no console error.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startBrowser, record, finish } from './harness.mjs';

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
const keep = process.argv.includes('--keep');
const PKG = path.join(ROOT, 'pkg');
const manifest = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
if (manifest.name !== 'emolens') throw new Error('pkg/ is not the emolens package: run scripts/package.sh after scripts/build-wasm.sh');

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'pipe'], maxBuffer: 1 << 26 }).toString();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'emolens-scratch-'));
const t0 = Date.now();
const seconds = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;

// ------------------------------------------------------------------ pack
const packed = JSON.parse(run('npm', ['pack', '--offline', '--json', '--pack-destination', scratch], PKG))[0];
const tarball = path.join(scratch, packed.filename);
const files = packed.files.map((f) => f.path).sort();
{
  const problems = [];
  for (const need of ['package.json', 'README.md', 'LICENSE', 'emolens.js', 'emolens_bg.wasm', 'index.d.ts', 'emolens.d.ts', 'vlm.js', 'vlm.d.ts', 'emolens_vlm.js', 'emolens_vlm_bg.wasm', 'emolens_vlm.d.ts', 'models/LICENSE', 'models/face_expression_model.bin']) {
    if (!files.includes(need)) problems.push(`the tarball lacks ${need}`);
  }
  const stray = files.filter((f) => !/^(package\.json|README\.md|LICENSE|[^/]+\.(js|wasm|d\.ts)|snippets\/.+\.js|models\/.+)$/.test(f));
  if (stray.length) problems.push(`unexpected files in the tarball: ${stray.join(', ')}`);
  for (const field of ['name', 'version', 'exports', 'types', 'files', 'sideEffects']) if (!(field in manifest)) problems.push(`package.json has no ${field}`);
  record('npm pack (offline): the package files and fields', problems, `${packed.filename}: ${(packed.size / 2 ** 20).toFixed(1)} MiB packed, ${(packed.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${files.length} files`);
}

// ------------------------------------------------------------------ scratch project
const readme = fs.readFileSync(path.join(PKG, 'README.md'), 'utf8');
const example = /```js\n([\s\S]*?)```/.exec(readme)[1];
fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, version: '1.0.0' }, null, 2));
fs.mkdirSync(path.join(scratch, 'src'));
// The README's example as the whole entry, then what the test reads back.
fs.writeFileSync(
  path.join(scratch, 'src', 'index.js'),
  `${example}\nwindow.__result = { backend: analyzer.backend, frames: report.frames, events: report.events, summaries: report.summaries.length, tokens: prompt.requests[0].tokens.total };\n`,
);
fs.writeFileSync(
  path.join(scratch, 'webpack.config.cjs'),
  `module.exports = { mode: 'production', entry: './src/index.js', output: { path: require('node:path').join(__dirname, 'dist'), publicPath: 'auto', clean: true }, performance: { hints: false } };\n`,
);
fs.writeFileSync(
  path.join(scratch, 'jsconfig.json'),
  JSON.stringify({ compilerOptions: { checkJs: true, allowJs: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'dom', 'esnext.disposable'], types: [] }, files: ['src/readme-example.js'] }),
);
fs.writeFileSync(path.join(scratch, 'src', 'readme-example.js'), `${example}\nexport {};\n`);

try {
  let t = Date.now();
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], scratch);
  const installed = JSON.parse(fs.readFileSync(path.join(scratch, 'node_modules', 'emolens', 'package.json'), 'utf8'));
  record('npm install of the tarball into a scratch project, offline', installed.version === manifest.version ? [] : [`installed ${installed.version}`], seconds(t));

  t = Date.now();
  let tscProblems = [];
  try {
    run(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'jsconfig.json'], scratch);
  } catch (e) {
    tscProblems = [`tsc: ${(e.stdout || '').toString().trim() || e.message}`];
  }
  record("the README's example type-checks against the installed package's types", tscProblems, seconds(t));

  t = Date.now();
  run(process.execPath, [path.join(ROOT, 'node_modules', 'webpack-cli', 'bin', 'cli.js'), '--config', 'webpack.config.cjs'], scratch);
  const dist = path.join(scratch, 'dist');
  const emitted = fs.readdirSync(dist);
  const wasms = emitted.filter((f) => f.endsWith('.wasm'));
  const bundleProblems = wasms.length === 1 ? [] : [`expected the face package's one .wasm, got: ${wasms.join(', ') || 'none'}`];
  // The example never imports emolens/vlm: the local VLM's module must not be in the bundle.
  if (emitted.some((f) => f.includes('vlm'))) bundleProblems.push(`the local VLM's module was bundled: ${emitted}`);
  record('webpack builds it with no rule for the .wasm, and leaves the local VLM out', bundleProblems, `${seconds(t)}: ${emitted.join(', ')}`);

  // The site: the README's models/ instruction, a page with the clip.
  fs.cpSync(path.join(scratch, 'node_modules', 'emolens', 'models'), path.join(dist, 'models'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'assets', 'sample.mp4'), path.join(dist, 'sample.mp4'));
  fs.writeFileSync(path.join(dist, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>scratch</title><video src="sample.mp4" muted playsinline></video><script src="main.js"></script>\n');

  t = Date.now();
  const browser = await startBrowser({ verbose, mounts: { '/scratch/': dist } });
  const page = await browser.context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (verbose) console.log(`[scratch console.${m.type()}] ${m.text()}`);
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  try {
    await page.goto(`${browser.base}/scratch/index.html`);
    await page.waitForFunction(() => window.__result, null, { timeout: 300_000, polling: 250 }).catch((e) => errors.push(e.message));
    const result = await page.evaluate(() => window.__result);
    const problems = [...errors];
    if (!result) problems.push('the example did not finish');
    else {
      if (result.frames < 10) problems.push(`${result.frames} frames analysed`);
      if (!result.events.some((e) => e.apex_expression && e.apex_expression[0] === 'happy')) problems.push('no smile spotted in the bundled clip');
      if (!(result.summaries > 0 && result.tokens > 0)) problems.push(`summaries ${result.summaries}, tokens ${result.tokens}`);
    }
    record("the README's example runs in Chromium from the installed package", problems, result ? `${seconds(t)}: ${result.backend}, ${result.frames} frames, ${result.events.length} event(s), ${result.tokens} tokens` : '');
  } finally {
    await browser.close();
  }
} catch (e) {
  record('scratch project', [e.stderr ? e.stderr.toString().slice(-2000) : e.message]);
} finally {
  if (keep) console.log(`scratch project kept in ${scratch}`);
  else fs.rmSync(scratch, { recursive: true, force: true });
}
console.log(`package test: ${seconds(t0)}`);
finish();
