// The local VLM through the whole ask flow (a step of vlm.mjs): `askClip(report, { vlm })` in
// the page against `emolens ask --local-vlm` on the same clip, keyframe JPEGs and checkpoint.
// Stage 1 is generated, both label orders and the content-free question are scored over the
// label set; the page must give the CLI's descriptions and labels, probabilities within 1e-4.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, SHARED, record } from './harness.mjs';

const TOL = 1e-4;
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
const BIN = path.join(targetDir, 'release', 'emolens');
const CLIP = path.join(SHARED, 'video', 'single_face.mp4');
const FLAGS = ['--stage1', '--permutations', '2', '--content-free', '--max-tokens', '4'];

/** Numbers within TOL, everything else equal: the problems found. */
function differences(a, b, where, out = []) {
  if (typeof a === 'number' && typeof b === 'number') {
    if (!(Math.abs(a - b) <= TOL)) out.push(`${where}: ${a} != CLI ${b}`);
  } else if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) differences(a[k], b[k], `${where}.${k}`, out);
  } else if (a !== b) out.push(`${where}: ${JSON.stringify(a)} != CLI ${JSON.stringify(b)}`);
  return out;
}

/** `files`: the checkpoint the page loads from /vlm/<folder>/ (name → bytes). */
export async function askClipStep(browser, page, folder, files) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'emolens-ask-'));
  try {
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json']) fs.writeFileSync(path.join(tmp, name), files[name]);
    const keyframes = path.join(tmp, 'keyframes');
    const report = JSON.parse(execFileSync(BIN, ['video', '--json', '--keyframe-size', '512', '--keyframes', keyframes, CLIP], { maxBuffer: 1 << 28 }));
    for (const k of report.keyframes) k.jpeg = `data:image/jpeg;base64,${fs.readFileSync(path.join(keyframes, k.file)).toString('base64')}`;
    const native = JSON.parse(execFileSync(BIN, ['ask', CLIP, '--local-vlm', tmp, ...FLAGS], { maxBuffer: 1 << 28 }));
    const r = await browser.call(page, 'askClip with the local VLM', async ({ report, folder }) => window.capture(async () => {
      const vlm = await window.emolensVlm.LocalVlm.load({ baseUrl: `/vlm/${folder}/`, backend: 'cpu' });
      const progress = [];
      const t0 = performance.now();
      const result = await window.emolens.askClip(report, { vlm, stage1: true, permutations: 2, contentFree: true, maxTokens: 4, onProgress: (done, total) => progress.push([done, total]) });
      const ms = performance.now() - t0;
      const controller = new AbortController();
      controller.abort();
      let aborted = null;
      try {
        await vlm.askClip(report, { signal: controller.signal });
      } catch (e) {
        aborted = { name: e.name, message: e.message };
      }
      vlm.free();
      return { result: window.toPlain(result), progress, aborted, ms };
    }), { report, folder });
    const p = [];
    if (!r.ok) p.push(`askClip rejected: ${r.error.message}`);
    else {
      const { result, progress, aborted } = r.value;
      p.push(...differences(result, native, 'result').slice(0, 8));
      const described = (native.stage1 ?? []).length;
      if (!described) p.push('stage 1 described no stretch');
      if (native.runs?.length !== 2) p.push(`${native.runs?.length} runs, expected 2`);
      if (native.corrected?.method !== 'content_free') p.push('no content-free correction');
      for (const run of result.runs ?? []) {
        const sum = Object.values(run.probabilities ?? {}).reduce((a, b) => a + b, 0);
        if (!(Math.abs(sum - 1) < 1e-9)) p.push(`a run's label probabilities sum to ${sum}`);
      }
      const total = described + 4;
      if (JSON.stringify(progress.at(-1)) !== JSON.stringify([total, total])) p.push(`progress ended at ${JSON.stringify(progress.at(-1))}, expected ${total} queries`);
      if (aborted?.name !== 'AbortError') p.push(`an aborted signal: ${JSON.stringify(aborted)}`);
    }
    record('askClip with the local VLM (stage 1 generated, label orders and content-free scored): the CLI\'s `ask --local-vlm` result', p,
      r.ok ? `${(r.value.ms / 1000).toFixed(1)} s, label ${r.value.result.label}, corrected ${r.value.result.corrected?.label}, stage 1: ${JSON.stringify(r.value.result.stage1?.[0]?.description)}` : '');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The demo: after "Analyse whole clip", VLM = local runs askClip on the clip (stage 1 and the content-free correction ticked). */
export async function demoClipStep(browser, folder) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.log(`[demo pageerror] ${e.message}`));
  const p = [];
  let info = '';
  try {
    await page.goto(`${browser.base}/index.html?backend=cpu&input=sample`);
    await page.waitForFunction(() => window.__emolens && window.__emolens.ready, null, { timeout: 120_000 });
    await page.click('#whole-clip');
    await page.waitForFunction(() => window.__emolens.error || (window.__emolens.clipReport && !document.getElementById('whole-clip').disabled), null, { timeout: 300_000, polling: 250 });
    await page.selectOption('#vlm-mode', 'local');
    await page.fill('#vlm-url', `${browser.base}/vlm/${folder}/`);
    await page.selectOption('#vlm-backend', 'cpu');
    await page.click('#vlm-load');
    await page.waitForFunction(() => window.__emolens.vlm.status === 'ready' || window.__emolens.vlm.error, null, { timeout: 120_000 });
    const before = await page.evaluate(() => ({ ask: document.getElementById('vlm-ask').textContent, options: !document.getElementById('vlm-clip').hidden }));
    if (before.ask !== 'Ask about the whole clip' || !before.options) p.push(`after the clip's analysis the panel offers ${JSON.stringify(before)}`);
    await page.check('#vlm-stage1');
    await page.check('#vlm-content-free');
    await page.click('#vlm-ask');
    await page.waitForFunction(() => window.__emolens.vlm.answer || window.__emolens.vlm.error, null, { timeout: 120_000 });
    const { answer, error } = await page.evaluate(() => ({ answer: window.__emolens.vlm.answer, error: window.__emolens.vlm.error }));
    const shown = await page.evaluate(() => document.getElementById('vlm-answer').textContent);
    if (error) p.push(`ask failed: ${error}`);
    else {
      if (!answer.stage1?.length) p.push('stage 1 did not run');
      if (!answer.corrected) p.push('no corrected label');
      if (!shown.includes(answer.label) || !shown.includes(answer.corrected ?? '?')) p.push(`the page shows ${JSON.stringify(shown)}`);
      info = `${JSON.stringify(shown)}; ${answer.stage1.length} stretches described`;
    }
  } catch (e) {
    p.push(`demo page: ${e.message}`);
  }
  record('demo: after "Analyse whole clip", VLM = local runs the whole ask flow on the clip (stage 1, content-free correction)', p, info);
  await page.close().catch(() => {});
}
