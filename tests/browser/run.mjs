#!/usr/bin/env node
// Browser test for emolens: runs the wasm build in headless Chromium (Debian's /usr/bin/chromium,
// WebGPU through SwiftShader) on the WebGPU and CPU backends and compares every photo with the
// native results.
//
//   node tests/browser/run.mjs [--native target/parity/native.json]
//        [--backends webgpu,cpu] [--bench 10] [--timeout 600] [--verbose]
//
// Needs: scripts/build-wasm.sh (pkg/; the page half is tests/browser/face-page.js, the harness
// is harness.mjs), and the native test run (cargo test --release), which writes target/parity/*.png and
// target/parity/native.json: [{ path, width, height, faces: [...] }, ...] in the JSON schema of
// Analyzer.analyzeFrame.
//
// Checks, per photo and backend: same size and face count, box IoU >= 0.99, landmarks within
// 0.5 px, every expression probability within 1e-3, result.backend is the backend asked for.
// Also: the webgpu analyzer reports backend 'webgpu' and a non-empty adapterInfo; the same photo
// through HTMLImageElement and ImageData matches too; errors reject with an Error (missing models,
// webgpu forced where there is none, bad inputSize); 'auto' falls back to cpu without WebGPU.
// Prints per-file maxima, frames/s per backend (10 timed calls after a warm-up) and, last,
// "N passed, M failed". Exit code 1 on any failure.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, startBrowser, record, finish, errorProblems } from './harness.mjs';

const EXPRESSIONS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];
const TOL = { iou: 0.99, landmarkPx: 0.5, expression: 1e-3 };
// ------------------------------------------------------------------ options
function parseArgs(argv) {
  const o = {
    native: process.env.EMOLENS_NATIVE_JSON || path.join(ROOT, 'target', 'parity', 'native.json'),
    backends: ['webgpu', 'cpu'],
    bench: 10,
    timeoutS: 600,
    verbose: false,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
    errors: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--native') o.native = path.resolve(val());
    else if (a === '--backends') o.backends = val().split(',').filter(Boolean);
    else if (a === '--bench') o.bench = Number(val());
    else if (a === '--timeout') o.timeoutS = Number(val());
    else if (a === '--no-error-cases') o.errors = false;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 21).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const b of o.backends) if (b !== 'webgpu' && b !== 'cpu') throw new Error(`--backends: unknown backend ${b}`);
  return o;
}

// ------------------------------------------------------------------ geometry and schema
const isNum = (x) => typeof x === 'number' && Number.isFinite(x);

function boxProblems(b, where) {
  if (!b || typeof b !== 'object') return [`${where} is missing`];
  const bad = ['x', 'y', 'width', 'height'].filter((k) => !isNum(b[k]));
  return bad.length ? [`${where}.{${bad.join(',')}} not finite numbers`] : [];
}

function schemaProblems(r, where) {
  const p = [];
  if (!r || typeof r !== 'object') return [`${where}: not an object`];
  if (!isNum(r.width) || !isNum(r.height)) p.push(`${where}: width/height missing`);
  if (!Array.isArray(r.faces)) return [...p, `${where}: faces is not an array`];
  r.faces.forEach((f, i) => {
    const w = `${where}.faces[${i}]`;
    p.push(...boxProblems(f.box, `${w}.box`), ...boxProblems(f.aligned_box, `${w}.aligned_box`));
    if (!isNum(f.score)) p.push(`${w}.score not a number`);
    if (!Array.isArray(f.landmarks) || f.landmarks.length !== 68) {
      p.push(`${w}.landmarks: expected 68 points, got ${Array.isArray(f.landmarks) ? f.landmarks.length : typeof f.landmarks}`);
    } else if (!f.landmarks.every((q) => Array.isArray(q) && q.length === 2 && isNum(q[0]) && isNum(q[1]))) {
      p.push(`${w}.landmarks: points must be [x, y] number pairs`);
    }
    if (!f.expressions || typeof f.expressions !== 'object') p.push(`${w}.expressions missing`);
    else {
      const bad = EXPRESSIONS.filter((k) => !isNum(f.expressions[k]));
      if (bad.length) p.push(`${w}.expressions: ${bad.join(', ')} missing (keys: ${Object.keys(f.expressions).join(', ') || 'none'})`);
    }
  });
  return p;
}

function iou(a, b) {
  const x0 = Math.max(a.x, b.x);
  const y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.width, b.x + b.width);
  const y1 = Math.min(a.y + a.height, b.y + b.height);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : a.width === b.width && a.height === b.height ? 1 : 0;
}

// Compares a browser result with the native one; returns { problems, stats }.
function compare(native, got, backend) {
  const problems = [];
  const stats = { faces: `${got.faces?.length ?? '?'}/${native.faces.length}`, minIou: 1, maxLm: 0, maxExpr: 0, maxScore: 0, minAligned: 1 };
  const schema = schemaProblems(got, 'result');
  if (schema.length) return { problems: schema.slice(0, 5), stats };
  if (got.backend !== backend) problems.push(`result.backend is ${JSON.stringify(got.backend)}, expected '${backend}'`);
  if (got.width !== native.width || got.height !== native.height) {
    problems.push(`size ${got.width}x${got.height}, native ${native.width}x${native.height}`);
  }
  if (got.faces.length !== native.faces.length) {
    const list = (fs_) => fs_.map((f) => `${fmtBox(f.box)} score ${f.score.toFixed(3)}`).join('; ') || 'none';
    problems.push(`${got.faces.length} faces, native has ${native.faces.length}: got ${list(got.faces)}; native ${list(native.faces)}`);
    return { problems, stats };
  }
  // Pair faces greedily by box IoU (the order should match already).
  const left = got.faces.map((f, i) => i);
  native.faces.forEach((nf, ni) => {
    let best = -1;
    let bestIou = -1;
    for (const gi of left) {
      const v = iou(nf.box, got.faces[gi].box);
      if (v > bestIou) {
        bestIou = v;
        best = gi;
      }
    }
    left.splice(left.indexOf(best), 1);
    const gf = got.faces[best];
    stats.minIou = Math.min(stats.minIou, bestIou);
    stats.minAligned = Math.min(stats.minAligned, iou(nf.aligned_box, gf.aligned_box));
    stats.maxScore = Math.max(stats.maxScore, Math.abs(nf.score - gf.score));
    let lm = 0;
    nf.landmarks.forEach(([x, y], k) => {
      const [gx, gy] = gf.landmarks[k];
      lm = Math.max(lm, Math.hypot(gx - x, gy - y));
    });
    stats.maxLm = Math.max(stats.maxLm, lm);
    let ex = 0;
    let exKey = '';
    for (const k of EXPRESSIONS) {
      const d = Math.abs(nf.expressions[k] - gf.expressions[k]);
      if (d > ex) {
        ex = d;
        exKey = k;
      }
    }
    stats.maxExpr = Math.max(stats.maxExpr, ex);
    if (bestIou < TOL.iou) problems.push(`face ${ni}: box IoU ${bestIou.toFixed(5)} < ${TOL.iou} (native ${fmtBox(nf.box)}, got ${fmtBox(gf.box)})`);
    if (lm > TOL.landmarkPx) problems.push(`face ${ni}: a landmark is ${lm.toFixed(3)} px from native (> ${TOL.landmarkPx})`);
    if (ex > TOL.expression) {
      problems.push(`face ${ni}: expression ${exKey} differs by ${ex.toExponential(2)} (> ${TOL.expression}; native ${nf.expressions[exKey].toFixed(5)}, got ${gf.expressions[exKey].toFixed(5)})`);
    }
  });
  return { problems, stats };
}

const fmtBox = (b) => `[${[b.x, b.y, b.width, b.height].map((v) => v.toFixed(2)).join(', ')}]`;
const fmtStats = (s) =>
  `faces ${s.faces}  IoU>=${s.minIou.toFixed(5)}  landmarks<=${s.maxLm.toFixed(4)}px  expr<=${s.maxExpr.toExponential(1)}  score<=${s.maxScore.toExponential(1)}  aligned IoU>=${s.minAligned.toFixed(4)}`;

// ------------------------------------------------------------------ main
async function main() {
  const opts = parseArgs(process.argv.slice(2));

  // Native results.
  let native;
  try {
    native = JSON.parse(fs.readFileSync(opts.native, 'utf8'));
    if (!Array.isArray(native) || native.length === 0) throw new Error('expected a non-empty array');
  } catch (e) {
    record('read native results', [`${opts.native}: ${e.message} (run cargo test --release first)`]);
    return finish(1);
  }
  const jsonDir = path.dirname(opts.native);
  const files = native.map((n) => {
    const candidates = path.isAbsolute(n.path) ? [n.path] : [path.resolve(ROOT, n.path), path.resolve(jsonDir, n.path), path.resolve(jsonDir, path.basename(n.path))];
    return candidates.find((c) => fs.existsSync(c)) || candidates[0];
  });
  const nativeProblems = [];
  native.forEach((n, i) => {
    if (!fs.existsSync(files[i])) nativeProblems.push(`${n.path}: file not found`);
    nativeProblems.push(...schemaProblems(n, `native[${i}] (${path.basename(n.path)})`));
  });
  if (!record(`native results: ${native.length} photos in ${path.relative(ROOT, opts.native)}`, nativeProblems.slice(0, 10))) return finish(1);

  // /__parity/<i>/<name> serves the native test's photos.
  const routes = (req, res) => {
    const m = /^\/__parity\/(\d+)\//.exec(req.url);
    if (!m) return false;
    const f = files[Number(m[1])];
    if (!f || !fs.existsSync(f)) {
      res.writeHead(404);
      res.end('not found');
    } else {
      res.writeHead(200, { 'Content-Type': 'image/png', 'Cache-Control': 'no-store' });
      fs.createReadStream(f).pipe(res);
    }
    return true;
  };
  let browser;
  try {
    browser = await startBrowser({ routes, verbose: opts.verbose, timeoutS: opts.timeoutS, chromium: opts.chromium });
  } catch (e) {
    record('browser', [e.message]);
    return finish(1);
  }
  const { base, call } = browser;
  const urlOf = (i) => `${base}/__parity/${i}/${encodeURIComponent(path.basename(files[i]))}`;
  async function openPage(label, initScript) {
    const page = await browser.openPage(label, initScript, '/blank.html', '/tests/face-page.js');
    await page.waitForFunction(() => !!window.emolensTest, null, { timeout: 60_000 });
    return page;
  }

  const bench = {};
  const maxima = {};
  const firstFace = Math.max(0, native.findIndex((n) => n.faces.length > 0));

  for (const backend of opts.backends) {
    console.log(`\n== backend ${backend}`);
    let page;
    let created;
    try {
      page = await openPage(backend);
      const hasGpu = await page.evaluate(() => window.emolensTest.hasWebGPU());
      if (backend === 'webgpu' && !hasGpu) console.log('note: navigator.gpu is missing in this browser (is --enable-unsafe-webgpu honoured?)');
      created = await call(page, `Analyzer.create(${backend})`, (b) => window.emolensTest.create({ backend: b, modelBaseUrl: 'models/' }), backend);
    } catch (e) {
      created = { ok: false, error: { isError: true, message: e.message } };
    }
    const cp = [];
    if (!created.ok) cp.push(`Analyzer.create rejected: ${created.error.message}`);
    else {
      const v = created.value;
      if (v.backend !== backend) cp.push(`analyzer.backend is ${JSON.stringify(v.backend)}, expected '${backend}'`);
      if (backend === 'webgpu' && !(typeof v.adapterInfo === 'string' && v.adapterInfo.trim())) {
        cp.push(`analyzer.adapterInfo is ${JSON.stringify(v.adapterInfo)}, expected a non-empty string`);
      }
      if (backend === 'cpu' && v.adapterInfo != null) cp.push(`analyzer.adapterInfo is ${JSON.stringify(v.adapterInfo)} on cpu, expected null`);
    }
    const info = created.ok ? `backend=${created.value.backend} adapterInfo=${JSON.stringify(created.value.adapterInfo)} (${(created.value.ms / 1000).toFixed(1)} s)` : '';
    const createdOk = record(`[${backend}] Analyzer.create({ backend: '${backend}' })`, cp, info);
    maxima[backend] = { minIou: 1, maxLm: 0, maxExpr: 0, n: 0 };

    const runOne = async (i, kind) => {
      const name = `[${backend}] ${path.basename(files[i])}${kind === 'bitmap' ? '' : ` via ${kind === 'image' ? 'HTMLImageElement' : 'ImageData'}`}`;
      if (!created.ok) return record(name, ['no analyzer (Analyzer.create failed)']);
      let res;
      try {
        res = await call(page, `analyzeFrame ${name}`, ([u, k]) => window.emolensTest.analyze(u, k), [urlOf(i), kind]);
      } catch (e) {
        return record(name, [e.message]);
      }
      if (!res.ok) return record(name, [`analyzeFrame rejected: ${res.error.message}`]);
      const { problems, stats } = compare(native[i], res.value.result, backend);
      const m = maxima[backend];
      m.minIou = Math.min(m.minIou, stats.minIou);
      m.maxLm = Math.max(m.maxLm, stats.maxLm);
      m.maxExpr = Math.max(m.maxExpr, stats.maxExpr);
      m.n += 1;
      return record(name, problems, `${fmtStats(stats)}  ${res.value.ms.toFixed(0)} ms`);
    };

    for (let i = 0; i < native.length; i++) await runOne(i, 'bitmap');
    // The other source types the API takes must give the same answer.
    await runOne(firstFace, 'image');
    await runOne(firstFace, 'imagedata');

    if (createdOk && opts.bench > 0) {
      try {
        const b = await call(page, `bench ${backend}`, ([u, n]) => window.emolensTest.bench(u, n, 1), [urlOf(firstFace), opts.bench]);
        if (b.ok) {
          bench[backend] = b.value;
          console.log(
            `frames/s [${backend}]: ${b.value.fps.toFixed(2)} (${opts.bench} calls on ${path.basename(files[firstFace])} ` +
              `${native[firstFace].width}x${native[firstFace].height}, ${(b.value.totalMs / opts.bench).toFixed(0)} ms/frame, ` +
              `min ${Math.min(...b.value.times).toFixed(0)} ms, max ${Math.max(...b.value.times).toFixed(0)} ms)`,
          );
        } else record(`[${backend}] benchmark`, [`analyzeFrame rejected: ${b.error.message}`]);
      } catch (e) {
        record(`[${backend}] benchmark`, [e.message]);
      }
    }
    if (page) await page.close().catch(() => {});
  }

  if (opts.errors) {
    console.log('\n== error paths');
    // Model files missing.
    try {
      const page = await openPage('errors');
      const r = await call(page, 'create with missing models', () => window.emolensTest.create({ backend: 'cpu', modelBaseUrl: 'no-such-models/' }));
      record(
        "missing model files reject Analyzer.create with an Error",
        r.ok ? ['Analyzer.create resolved although modelBaseUrl has no models'] : errorProblems(r, 'Analyzer.create'),
        r.ok ? '' : `message: ${JSON.stringify(r.error.message)}`,
      );
      const r2 = await call(page, 'create with a bad inputSize', () => window.emolensTest.create({ backend: 'cpu', modelBaseUrl: 'models/', inputSize: 100 }));
      record(
        'inputSize 100 (not a multiple of 32) rejects with an Error',
        r2.ok ? ['Analyzer.create resolved with inputSize 100'] : errorProblems(r2, 'Analyzer.create'),
        r2.ok ? '' : `message: ${JSON.stringify(r2.error.message)}`,
      );
      await page.close();
    } catch (e) {
      record('error paths (missing models, inputSize)', [e.message]);
    }
    // A browser without WebGPU: navigator.gpu hidden before the page's scripts run.
    try {
      const page = await openPage('no-webgpu', () => {
        Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
      });
      const r = await call(page, 'webgpu forced without WebGPU', () => window.emolensTest.create({ backend: 'webgpu', modelBaseUrl: 'models/' }));
      record(
        "backend 'webgpu' without WebGPU rejects with an Error",
        r.ok ? [`Analyzer.create resolved (backend ${r.value.backend}) although navigator.gpu is undefined`] : errorProblems(r, 'Analyzer.create'),
        r.ok ? '' : `message: ${JSON.stringify(r.error.message)}`,
      );
      const r2 = await call(page, 'auto without WebGPU', () => window.emolensTest.create({ backend: 'auto', modelBaseUrl: 'models/' }));
      record(
        "backend 'auto' without WebGPU falls back to cpu",
        !r2.ok ? [`Analyzer.create rejected: ${r2.error.message}`] : r2.value.backend === 'cpu' ? [] : [`analyzer.backend is ${JSON.stringify(r2.value.backend)}`],
        r2.ok ? `fallbackReason: ${JSON.stringify(r2.value.fallbackReason)}` : '',
      );
      await page.close();
    } catch (e) {
      record('error paths (no WebGPU)', [e.message]);
    }
  }

  await browser.close();

  console.log('\n== summary');
  for (const b of opts.backends) {
    const m = maxima[b];
    if (m && m.n) console.log(`parity maxima [${b}] over ${m.n} runs: min box IoU ${m.minIou.toFixed(5)}, max landmark ${m.maxLm.toFixed(4)} px, max expression ${m.maxExpr.toExponential(2)}`);
    if (bench[b]) console.log(`frames/s [${b}]: ${bench[b].fps.toFixed(2)} (${(bench[b].totalMs / bench[b].n).toFixed(0)} ms/frame)`);
  }
  return finish(0);
}

main().catch((e) => {
  console.log(`internal error: ${e.stack || e.message}`);
  record('test harness', [e.message]);
  finish(1);
});
