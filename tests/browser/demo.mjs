#!/usr/bin/env node
// End-to-end test of the built demo (www/dist, webpack) in headless Chromium, as a visitor uses it:
// it opens the page on the bundled clip, presses "Analyse whole clip" and checks what the page
// shows against the report it got:
// - the report covers the clip's frames (ffprobe) and spots the smile of the bundled clip;
// - the timeline plot: one band per event where the event is, in its kind's colour (pixels read
//   back from the canvas), a marker per keyframe, expression lines and the feature heat map drawn,
//   lip-corner pull warm at the smile's apex; a click on the plot seeks the video there;
// - the events and summaries listed, one row of token counts per prompt mode equal to
//   buildPrompt's, the prompt preview, and the JSON download equal to the report;
// - no console error and no page error from start to end.
// Saves a screenshot to target/demo.jpg (and docs/demo.jpg, which the README shows, with
// --update-screenshot).
//
//   node tests/browser/demo.mjs [--verbose] [--update-screenshot]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startBrowser, record, finish, withTimeout } from './harness.mjs';

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
const updateScreenshot = process.argv.includes('--update-screenshot');
const CLIP = path.join(ROOT, 'assets', 'sample.mp4');
if (!fs.existsSync(path.join(ROOT, 'www', 'dist', 'index.html'))) throw new Error('www/dist is missing: run webpack --mode production first');

const clipFrames = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', CLIP])
  .toString()
  .trim();

const browser = await startBrowser({ verbose });
const page = await browser.context.newPage();
await page.setViewportSize({ width: 1200, height: 900 });
const consoleErrors = [];
page.on('console', (m) => {
  if (verbose) console.log(`[demo console.${m.type()}] ${m.text()}`);
  if (m.type() === 'error') consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
// Every .wasm the page fetches: the local VLM's module only when a VLM is loaded (never here).
const wasmFetched = [];
page.on('request', (r) => {
  if (/\.wasm(\?|$)/.test(r.url())) wasmFetched.push(r.url().replace(/^.*\//, ''));
});

const t0 = Date.now();
let report = null;
try {
  await page.goto(`${browser.base}/?backend=cpu&input=sample`);
  await page.waitForFunction(() => window.__emolens && (window.__emolens.error || (window.__emolens.ready && window.__emolens.frames >= 2)), null, { timeout: 300_000, polling: 250 });
  const startError = await page.evaluate(() => window.__emolens.error);
  record('demo starts and analyses the sample clip live', startError ? [startError] : [], `${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const t1 = Date.now();
  await page.click('#whole-clip');
  await page.waitForFunction(() => window.__emolens.error || (window.__emolens.clipReport && !document.getElementById('whole-clip').disabled), null, { timeout: 300_000, polling: 250 });
  const analyseError = await page.evaluate(() => window.__emolens.error);
  report = analyseError ? null : await page.evaluate(() => window.__emolens.clipReport);
  const problems = analyseError ? [analyseError] : [];
  if (report) {
    if (String(report.frames) !== clipFrames) problems.push(`the report has ${report.frames} frames, ffprobe counts ${clipFrames}`);
    if (!report.records || report.records.length !== report.frames) problems.push('the report has no per-frame records (the plot needs them)');
    // The bundled clip: neutral, then a smile from about 0.6 s (assets/SOURCES.md).
    const smile = report.events.find((e) => e.apex_expression && e.apex_expression[0] === 'happy');
    if (!smile) problems.push(`no event with a happy apex: ${JSON.stringify(report.events.map((e) => [e.kind, e.onset_time, e.apex_expression]))}`);
    else if (!(smile.onset_time > 0.2 && smile.onset_time < 1.2)) problems.push(`the smile starts at ${smile.onset_time} s, expected about 0.6 s`);
  }
  record('whole clip analysed: the frames of the clip and its smile', problems, report ? `${report.frames} frames, ${report.events.length} event(s), ${((Date.now() - t1) / 1000).toFixed(1)} s` : '');
} catch (e) {
  record('demo runs', [e.message]);
}

if (report) {
  // ---------------------------------------------------------------- the plot
  const plot = await page.evaluate(() => {
    const { layout } = window.__emolens.plot;
    const canvas = document.getElementById('clip-plot');
    const ctx = canvas.getContext('2d');
    const dpr = canvas.width / canvas.clientWidth;
    const pixel = (x, y) => Array.from(ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data);
    // Pixels of each expression's line colour in the expression panel.
    const d = ctx.getImageData(Math.round(layout.left * dpr), Math.round(layout.expressions.top * dpr), Math.round(layout.width * dpr), Math.round(layout.expressions.height * dpr)).data;
    const want = layout.expressionColours.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
    const linePixels = want.map(() => 0);
    for (let i = 0; i < d.length; i += 4) {
      want.forEach((rgb, k) => {
        if (d[i + 3] > 200 && rgb.every((v, j) => Math.abs(v - d[i + j]) <= 24)) linePixels[k] += 1;
      });
    }
    return {
      layout,
      // Seven points across each band: the playback cursor or a keyframe line may cross one.
      bandStrips: layout.bands.map((b) => [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8].map((f) => pixel(b.x0 + f * (b.x1 - b.x0), layout.eventStrip.top + layout.eventStrip.height / 2))),
      linePixels,
      keyframeMarks: layout.keyframes.map((k) => pixel(k.x, 4)),
    };
  });
  const EVENT_COLOURS = plot.layout.colours;
  const hex = (rgb) => `#${rgb.slice(0, 3).map((v) => v.toString(16).padStart(2, '0')).join('')}`;
  const near = (rgb, colour) => {
    const want = [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
    return want.every((v, i) => Math.abs(v - rgb[i]) <= 3);
  };
  const l = plot.layout;
  const problems = [];
  const xAt = (t) => l.left + (t / l.duration) * l.width;
  if (l.bands.length !== report.events.length) problems.push(`${l.bands.length} bands for ${report.events.length} events`);
  report.events.forEach((e, i) => {
    const b = l.bands[i];
    if (!b) return;
    if (b.kind !== e.kind) problems.push(`band ${i} is ${b.kind}, the event ${e.kind}`);
    if (Math.abs(b.x0 - xAt(e.onset_time)) > 0.5 || Math.abs(b.x1 - Math.max(b.x0 + 2, xAt(e.offset_time))) > 0.5) problems.push(`band ${i} spans x ${b.x0}–${b.x1}, the event ${e.onset_time}–${e.offset_time} s`);
    const inColour = plot.bandStrips[i].filter((rgb) => near(rgb, EVENT_COLOURS[e.kind])).length;
    if (inColour < 5) problems.push(`band ${i} (${e.kind}) is drawn ${plot.bandStrips[i].map(hex).join(' ')}, expected ${EVENT_COLOURS[e.kind]} on at least 5 of 7 points`);
  });
  if (l.keyframes.length !== report.keyframes.length) problems.push(`${l.keyframes.length} keyframe markers for ${report.keyframes.length} keyframes`);
  plot.keyframeMarks.forEach((rgb, i) => {
    if (rgb[0] + rgb[1] + rgb[2] < 600) problems.push(`keyframe ${i}'s marker is not drawn (${hex(rgb)} at x ${l.keyframes[i].x})`);
  });
  if (Math.abs(l.duration - report.duration) > 1 / report.fps) problems.push(`the plot spans ${l.duration} s, the clip ${report.duration} s`);
  // Each expression that leads some frame has its line drawn (the others may lie under another at 0).
  const leading = new Set(report.records.filter((r) => r.expressions).map((r) => r.expressions.indexOf(Math.max(...r.expressions))));
  for (const k of leading) if (plot.linePixels[k] < l.width / 10) problems.push(`expression ${k} leads some frames but its line has ${plot.linePixels[k]} pixels`);
  // Talking spans, when the report lists them (a bare count draws none).
  const spans = [report.talking, report.talking_spans].find(Array.isArray) || [];
  const talking = spans.length;
  if (l.talking.length !== talking) problems.push(`${l.talking.length} talking spans drawn, the report has ${talking}`);
  record('plot: a band per event in its colour, keyframe markers, expression lines', problems, `${l.bands.map((b) => b.kind).join(', ')}; ${l.keyframes.length} keyframes; line pixels per expression ${plot.linePixels.join(' ')}`);

  // The smile shows in the heat map: lip-corner pull is warm (more of the action) at the apex.
  const smile = report.events.find((e) => e.apex_expression && e.apex_expression[0] === 'happy') || report.events[0];
  if (smile) {
    const heat = await page.evaluate(({ apex }) => {
      const { layout } = window.__emolens.plot;
      const canvas = document.getElementById('clip-plot');
      const dpr = canvas.width / canvas.clientWidth;
      const names = layout.features.names;
      const row = names.indexOf('lip_corner_pull_left');
      const x = layout.left + (apex / layout.duration) * layout.width;
      const y = layout.features.top + (row + 0.5) * (layout.features.height / names.length);
      return { row, rgb: Array.from(canvas.getContext('2d').getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data) };
    }, { apex: smile.apex_time });
    const [r, , b] = heat.rgb;
    record('plot: lip-corner pull is warm in the heat map at the smile', heat.row < 0 ? ['featureNames() has no lip_corner_pull_left'] : r > b + 60 ? [] : [`pixel ${hex(heat.rgb)} is not warm`], hex(heat.rgb));
  }

  // Click to seek: a click at the x of an event's apex puts the (paused) video there.
  const target = smile ? smile.apex_time : report.duration / 2;
  if (!(await page.evaluate(() => document.getElementById('video').paused))) await page.click('#pause');
  const framesBeforeSeek = await page.evaluate(() => window.__emolens.frames);
  const seek = await page.evaluate((t) => {
    const { layout } = window.__emolens.plot;
    const canvas = document.getElementById('clip-plot');
    const box = canvas.getBoundingClientRect();
    const x = box.left + layout.left + (t / layout.duration) * layout.width;
    const video = document.getElementById('video');
    canvas.dispatchEvent(new MouseEvent('click', { clientX: x, clientY: box.top + layout.expressions.top + 20, bubbles: true }));
    return { currentTime: video.currentTime, cursor: layout.cursor };
  }, target);
  const tolerance = report.duration / plot.layout.width; // a pixel of the plot
  record(
    'plot: a click seeks the video to that time',
    Math.abs(seek.currentTime - target) <= tolerance && Math.abs(seek.cursor - target) <= tolerance ? [] : [`clicked at ${target} s, the video is at ${seek.currentTime} s, the cursor at ${seek.cursor}`],
    `${seek.currentTime.toFixed(3)} s`,
  );

  // ---------------------------------------------------------------- lists, tokens, download
  const page2 = await page.evaluate(() => {
    const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
    return {
      events: texts('#clip-events li'),
      summaries: texts('#clip-summaries li'),
      keyframes: document.querySelectorAll('#clip-keyframes img').length,
      tokenRows: [...document.querySelectorAll('#clip-tokens tr[data-mode]')].map((tr) => ({ mode: tr.dataset.mode, cells: [...tr.children].map((td) => td.textContent) })),
      prompt: document.getElementById('clip-prompt').textContent,
      mode: document.getElementById('clip-prompt-mode').value,
    };
  });
  const listProblems = [];
  if (page2.events.length !== Math.max(1, report.events.length)) listProblems.push(`${page2.events.length} events listed for ${report.events.length}`);
  report.events.forEach((e, i) => {
    const text = page2.events[i] || '';
    if (!text.startsWith(`${e.kind} ${e.onset_time.toFixed(2)}–${e.offset_time.toFixed(2)} s`)) listProblems.push(`event ${i} listed as "${text}"`);
  });
  if (page2.summaries.length !== report.summaries.length || report.summaries.some((s, i) => !page2.summaries[i].endsWith(s.text))) listProblems.push('the summaries listed are not the report\'s');
  if (page2.keyframes !== report.keyframes.length) listProblems.push(`${page2.keyframes} keyframe images for ${report.keyframes.length}`);
  record('events, summaries and keyframes listed as in the report', listProblems);

  // Token counts per mode (the package's estimates): every mode of the select has its row, and
  // the modes relate as they must: no image in `summaries`, enriched = keyframes' images + text.
  const modes = await page.evaluate(() => [...document.querySelectorAll('#clip-prompt-mode option')].map((o) => o.value));
  const tokens = Object.fromEntries(page2.tokenRows.map((r) => [r.mode, { text: +r.cells[1], image: +r.cells[2], total: +r.cells[3] }]));
  const tokenProblems = [];
  if (page2.tokenRows.length !== modes.length || modes.some((m) => !tokens[m])) tokenProblems.push(`token rows for ${Object.keys(tokens)}, modes ${modes}`);
  for (const [mode, t] of Object.entries(tokens)) if (!(t.total > 0 && t.total === t.text + t.image)) tokenProblems.push(`${mode}: ${JSON.stringify(t)}`);
  const { summaries: tSummaries, keyframes: tKeyframes, enriched: tEnriched } = tokens;
  if (!tSummaries || tSummaries.image !== 0) tokenProblems.push(`summaries mode: ${JSON.stringify(tSummaries)} (no image expected)`);
  if (!tKeyframes || !tEnriched || tKeyframes.image !== tEnriched.image || !(tKeyframes.image > 0)) tokenProblems.push(`keyframes and enriched send the same images: ${JSON.stringify([tKeyframes, tEnriched])}`);
  if (tEnriched && tKeyframes && !(tEnriched.text > tKeyframes.text)) tokenProblems.push('the enriched prompt has no more text than the keyframes one');
  if (page2.mode !== modes[0]) tokenProblems.push(`the preview shows ${page2.mode}, not the default mode ${modes[0]}`);
  if (page2.mode !== 'summaries' && (page2.prompt.match(/\[image\]/g) || []).length !== report.keyframes.length) tokenProblems.push(`the ${page2.mode} preview shows ${(page2.prompt.match(/\[image\]/g) || []).length} images for ${report.keyframes.length} keyframes`);
  if (!report.events.every((e) => page2.prompt.includes(e.onset_time.toFixed(2)))) tokenProblems.push('the preview does not mention every event onset');
  const expected = Object.entries(tokens).map(([mode, t]) => ({ mode, tokens: { total: t.total } }));
  record('prompt: token counts per mode, the preview', tokenProblems, expected.map((e) => `${e.mode} ${e.tokens.total}`).join(', '));

  try {
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#clip-download')]);
    const saved = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    const same = JSON.stringify(saved) === JSON.stringify(report);
    record('download: the analysis as JSON, equal to the report', same ? [] : ['the downloaded JSON differs from the report'], `${download.suggestedFilename()}, ${(fs.statSync(await download.path()).size / 1024).toFixed(0)} KiB`);
  } catch (e) {
    record('download: the analysis as JSON, equal to the report', [e.message]);
  }

  // ---------------------------------------------------------------- screenshot
  try {
    // The smile's apex on the stage (the click above seeked there), its analysis drawn over it:
    // an analysis that was running at the click ends first, then the seeked frame's runs.
    const settled = (n) =>
      withTimeout(
        page.waitForFunction((k) => {
          const s = window.__emolens;
          return !document.getElementById('video').seeking && s.frames > k && !s.inflight && s.lastResult && s.lastResult.faces.length > 0;
        }, n, { polling: 100, timeout: 60_000 }),
        70,
        'the seeked frame analysed',
      );
    await settled(framesBeforeSeek);
    await page.waitForTimeout(500);
    await settled(framesBeforeSeek);
    const out = path.join(ROOT, 'target', 'demo.jpg');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    await page.screenshot({ path: out, fullPage: true, type: 'jpeg', quality: 70 });
    if (updateScreenshot) fs.copyFileSync(out, path.join(ROOT, 'docs', 'demo.jpg'));
    record('screenshot', [], `${path.relative(ROOT, out)} (${(fs.statSync(out).size / 1024).toFixed(0)} KiB)${updateScreenshot ? ', copied to docs/demo.jpg' : ''}`);
  } catch (e) {
    record('screenshot', [e.message]);
  }
}

// ---------------------------------------------------------------- live analysis
// The sample clip played once and analysed as it plays, in a Web Worker (www/live-button.js).
if (report) {
  try {
    await page.click('#live');
    await withTimeout(
      page.waitForFunction(() => window.__emolens.error || (window.__emolens.liveReport && document.getElementById('live').textContent === 'Live analysis'), null, { polling: 250, timeout: 120_000 }),
      130,
      'the live analysis report',
    );
    const live = await page.evaluate(() => {
      const s = window.__emolens;
      return s.error ? { error: s.error } : { frames: s.liveReport.frames, live: s.liveReport.live, events: s.liveReport.events.map((e) => e.apex_expression?.[0]) };
    });
    const p = [];
    if (live.error) p.push(live.error);
    else {
      if (!live.live.worker) p.push('the session did not run in a Web Worker');
      const presented = live.frames + live.live.dropped_frames;
      // A functional check (a loaded machine drops frames); bench.mjs holds the 90 % target.
      if (!(live.frames >= 0.5 * presented)) p.push(`${live.frames} of ${presented} presented frames analysed (< 50 %)`);
      if (!live.events.includes('happy')) p.push(`no smile among the events: ${live.events}`);
    }
    record('live analysis of the playing clip in a Web Worker: the report, the smile found', p, live.error ? '' : `${live.frames} analysed, ${live.live.dropped_frames} dropped, events ${live.events}`);
  } catch (e) {
    record('live analysis of the playing clip in a Web Worker: the report, the smile found', [e.message]);
  }
}

record("the page fetched the face package's wasm and not the local VLM's", [
  ...(wasmFetched.some((f) => f.startsWith('emolens_bg')) ? [] : ['emolens_bg*.wasm was not fetched']),
  ...wasmFetched.filter((f) => f.includes('vlm')).map((f) => `fetched ${f} with no VLM asked for`),
], wasmFetched.join(', '));
record('no console error or page error', consoleErrors, consoleErrors.length ? '' : `${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
await browser.close();
finish();
