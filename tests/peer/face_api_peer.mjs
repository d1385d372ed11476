#!/usr/bin/env node
// face-api.js parity peer for emolens.
//
// Runs @vladmandic/face-api (node-wasm build, tfjs 4.22) on PNG files and prints
// one JSON document on stdout with detections, 68-point landmarks, aligned boxes
// and expression probabilities, for comparison with the Rust implementation.
//
// Usage:
//   node tests/peer/face_api_peer.mjs --input-size N [--score-threshold 0.5]
//        [--backend wasm|cpu] FILE.png...
//
// Images are decoded with pngjs (always RGBA, 8 bit); alpha is dropped without
// compositing (R, G, B as stored), matching image::DynamicImage::to_rgb8().
// The image is fed to face-api as an int32 tensor3d [h, w, 3], so face-api takes
// its tensor code path (padToSquare + resizeBilinear; extractFaceTensors for crops).
//
// Nothing but the JSON goes to stdout; logs go to stderr.
// Exit codes: 0 ok, 1 usage/internal error, 2 unreadable input file.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

// Keep stdout clean for the JSON: whatever a library prints with console.log/info goes to stderr.
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

function log(...args) { process.stderr.write(args.join(' ') + '\n'); }
function die(code, msg) { process.stderr.write(msg.replace(/\n/g, ' ') + '\n'); process.exit(code); }

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const opts = { inputSize: null, scoreThreshold: 0.5, backend: 'wasm', files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(1, `face_api_peer: missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--input-size') opts.inputSize = Number(val());
    else if (a === '--score-threshold') opts.scoreThreshold = Number(val());
    else if (a === '--backend') opts.backend = val();
    else if (a === '--repeat') opts.repeat = Number(val());
    else if (a === '-h' || a === '--help') {
      log('usage: node tests/peer/face_api_peer.mjs --input-size N [--score-threshold 0.5] [--backend wasm|cpu] [--repeat N] FILE.png...');
      process.exit(0);
    } else if (a.startsWith('--')) die(1, `face_api_peer: unknown option ${a}`);
    else opts.files.push(a);
  }
  if (!Number.isInteger(opts.inputSize) || opts.inputSize <= 0 || opts.inputSize % 32 !== 0) {
    die(1, 'face_api_peer: --input-size N is required (positive multiple of 32)');
  }
  if (!Number.isFinite(opts.scoreThreshold)) die(1, 'face_api_peer: bad --score-threshold');
  if (opts.backend !== 'wasm' && opts.backend !== 'cpu') die(1, 'face_api_peer: --backend must be wasm or cpu');
  if (opts.files.length === 0) die(1, 'face_api_peer: no input files');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- decoding
// Done before loading tfjs so an unreadable file fails fast with exit 2.
const { PNG } = require('pngjs');

function decodePng(file) {
  let png;
  try {
    png = PNG.sync.read(readFileSync(file));
  } catch (e) {
    die(2, `face_api_peer: cannot read PNG ${file}: ${e && e.message ? e.message : e}`);
  }
  const { width, height, data } = png; // RGBA, 8 bit per channel (pngjs default)
  if (data.length !== width * height * 4) {
    die(2, `face_api_peer: unexpected pixel buffer size for ${file}`);
  }
  // pngjs zeroes R, G, B (not only A) of pixels that match a tRNS colour key in
  // greyscale / truecolour images (colour types 0 and 2). The image crate keeps the
  // stored colour, so put the key colour back (scaled to 8 bit as pngjs does).
  // In these colour types alpha 0 can only come from the tRNS key.
  if ((png.colorType === 0 || png.colorType === 2) && png.transColor) {
    const maxIn = 2 ** png.depth - 1;
    const scale = (v) => (png.depth === 8 ? v : Math.floor((v * 255) / maxIn + 0.5));
    const tc = png.transColor.length === 1
      ? [png.transColor[0], png.transColor[0], png.transColor[0]]
      : png.transColor;
    const key = tc.map(scale);
    for (let p = 0; p < data.length; p += 4) {
      if (data[p + 3] === 0) {
        data[p] = key[0];
        data[p + 1] = key[1];
        data[p + 2] = key[2];
      }
    }
  }
  const rgb = new Int32Array(width * height * 3);
  for (let p = 0, q = 0; p < data.length; p += 4, q += 3) {
    rgb[q] = data[p];
    rgb[q + 1] = data[p + 1];
    rgb[q + 2] = data[p + 2];
  }
  return { width, height, rgb };
}

const images = opts.files.map((f) => ({ path: f, ...decodePng(f) }));

// ---------------------------------------------------------------- tfjs + face-api
// The node-wasm build is CJS and does require('@tensorflow/tfjs') and
// require('@tensorflow/tfjs-backend-wasm'); it re-exports them as faceapi.tf.
// We configure that very instance.
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const tf = faceapi.tf;
const tfDirect = require('@tensorflow/tfjs');
if (tfDirect.engine() !== tf.engine()) log('face_api_peer: WARNING faceapi.tf engine differs from @tensorflow/tfjs');

const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
tf.setWasmPaths(wasmDir + path.sep);

if (!(await tf.setBackend(opts.backend))) die(1, `face_api_peer: could not set tfjs backend ${opts.backend}`);
await tf.ready();
if (tf.getBackend() !== opts.backend) die(1, `face_api_peer: tfjs backend is ${tf.getBackend()}, wanted ${opts.backend}`);
log(`face_api_peer: tfjs ${tf.version_core} backend=${tf.getBackend()} face-api ${faceapi.version}`);

const modelDir = path.dirname(require.resolve('@vladmandic/face-api/model/tiny_face_detector_model-weights_manifest.json'));
await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);
log(`face_api_peer: models loaded from ${modelDir}`);

const EXPRESSIONS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];
const boxJson = (b) => ({ x: b.x, y: b.y, width: b.width, height: b.height });

const detectorOptions = new faceapi.TinyFaceDetectorOptions({
  inputSize: opts.inputSize,
  scoreThreshold: opts.scoreThreshold,
});

async function analyze(img) {
  const tensor = tf.tensor3d(img.rgb, [img.height, img.width, 3], 'int32');
  try {
    return await faceapi
      .detectAllFaces(tensor, detectorOptions)
      .withFaceLandmarks()
      .withFaceExpressions();
  } finally {
    tensor.dispose();
  }
}

// --repeat N (benchmarks): one warm-up run, then N timed runs; "ms" is their mean.
const repeat = Number.isInteger(opts.repeat) && opts.repeat > 0 ? opts.repeat : 0;
const out = [];
for (const img of images) {
  let t0 = process.hrtime.bigint();
  const results = await analyze(img);
  if (repeat) {
    t0 = process.hrtime.bigint();
    for (let i = 0; i < repeat; i++) await analyze(img);
  }
  const faces = results.map((r) => ({
    box: boxJson(r.detection.box),
    score: r.detection.score,
    landmarks: r.landmarks.positions.map((p) => [p.x, p.y]),
    aligned_box: boxJson(r.alignedRect.box),
    expressions: Object.fromEntries(EXPRESSIONS.map((k) => [k, r.expressions[k]])),
  }));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / Math.max(repeat, 1);
  log(`face_api_peer: ${img.path} ${img.width}x${img.height} faces=${faces.length} ${ms.toFixed(1)} ms`);
  out.push({ path: img.path, width: img.width, height: img.height, backend: tf.getBackend(), ms, faces });
}

process.stdout.write(JSON.stringify(out) + '\n');
