#!/usr/bin/env node
// Browser test of the remote VLM client (askRemote / previewRemote) in headless Chromium against
// the fake VLM server of the native tests (examples/fake_vlm_server.rs: the vLLM, llama.cpp and
// Ollama byte shapes and faults from tests/support/fake_vlm.rs). The server listens on another
// port than the page, so every request is cross-origin: CORS preflights, hidden headers and
// refused origins are real.
//
//   node tests/browser/remote.mjs [--verbose]
//
// Needs pkg/ (scripts/build-wasm.sh) and cargo (it builds the example, a no-op after
// `cargo test --release`). FAKE_VLM_SERVER=path skips the build.
import net from 'node:net';
import { startBrowser, startFakeServer, record, finish, errorProblems, withTimeout, ROOT } from './harness.mjs';

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
const KEY = 'sk-browser-secret-7f3a9c';
const DIALECTS = ['vllm', 'llamacpp', 'ollama'];
const LABELS = ['happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear'];
// A 1×1 JPEG is enough: the fake server never decodes it, it only sees whether pixels were sent.
const PIXEL = 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==';

// ------------------------------------------------------------------ what the page sends
/** The conversation in the shape `emolens prompt` prints: system instruction, user text + keyframe. */
function conversation(order, withImage = true) {
  const user = [{ type: 'text', text: 'Keyframes at 0.0 s and 1.0 s. 0.57-1.97 s: lip-corner pull (macro). What emotion?' }];
  if (withImage) user.push({ type: 'image_url', image_url: { url: PIXEL, detail: 'low' } });
  return [
    { role: 'system', content: `Classify the emotion shown. Choose exactly one label from this list: ${order.join(', ')}.` },
    { role: 'user', content: user },
  ];
}

// The dialect × feature table printed at the end: which byte shapes each feature was tested with.
const COLUMNS = { vllm: 'vLLM', llamacpp: 'llama.cpp', ollama: 'Ollama', other: 'other shapes' };
const table = new Map();
function cell(feature, dialect, ok) {
  if (!table.has(feature)) table.set(feature, {});
  const row = table.get(feature);
  row[dialect] = row[dialect] === 'FAIL' || !ok ? 'FAIL' : 'ok';
}
function printTable() {
  const cols = Object.keys(COLUMNS);
  console.log(`\n| feature (browser) | ${cols.map((c) => COLUMNS[c]).join(' | ')} |`);
  console.log(`|---|${cols.map(() => '---').join('|')}|`);
  for (const [feature, row] of table) console.log(`| ${feature} | ${cols.map((c) => row[c] ?? '').join(' | ')} |`);
}

let caseId = 0;
/** A fresh endpoint for `scenario`: its own request count and its own log entries. */
const endpointFor = (fake, scenario) => `${fake.base}/${scenario}/c${++caseId}/v1`;
const postsTo = (seen, endpoint) => seen.filter((r) => r.method === 'POST' && `${r.path}`.startsWith(new URL(endpoint).pathname));
const header = (r, name) => r.headers.find(([k]) => k.toLowerCase() === name)?.[1];

/** Runs askRemote in the page with an AbortController and an onToken that records the pieces. */
async function ask(browser, page, args) {
  const t0 = Date.now();
  const res = await browser.call(
    page,
    `askRemote ${args.options.endpoint}`,
    async ({ messages, options, abortAfterTokens, abortBefore, functionMessages, throwInOnToken }) => {
      const tokens = [];
      const controller = new AbortController();
      if (abortBefore) controller.abort();
      const opts = { ...options, signal: controller.signal };
      opts.onToken = (text, index) => {
        tokens.push([text, index]);
        if (throwInOnToken) throw new Error('the page failed to show a token');
        if (abortAfterTokens && tokens.length === abortAfterTokens) setTimeout(() => controller.abort(), 20);
      };
      const msgs = functionMessages
        ? (order) => [
            { role: 'system', content: `Choose one label from: ${order.join(', ')}.` },
            { role: 'user', content: 'What emotion?' },
          ]
        : messages;
      const started = performance.now();
      let r;
      try {
        r = { ok: true, value: window.toPlain(await window.emolens.askRemote(msgs, opts)) };
      } catch (e) {
        // What the harness's capture() reports, plus the fault's kind and HTTP status.
        const error = e instanceof Error ? { isError: true, name: e.name, message: e.message, kind: e.kind, status: e.status } : { isError: false, name: typeof e, message: String(e) };
        r = { ok: false, error };
      }
      return { ...r, tokens, ms: performance.now() - started };
    },
    args,
  );
  if (verbose) console.log(JSON.stringify(res).slice(0, 400), `(${Date.now() - t0} ms)`);
  return res;
}

function expectError(res, what, { kind, status, name, includes = [] }) {
  if (res.ok) return [`${what}: resolved instead of rejecting: ${JSON.stringify(res.value).slice(0, 200)}`];
  const p = errorProblems(res, what);
  const e = res.error;
  if (name && e.name !== name) p.push(`${what}: error name ${e.name}, expected ${name}`);
  if (kind && e.kind !== kind) p.push(`${what}: error kind ${e.kind}, expected ${kind}`);
  if (status && e.status !== status) p.push(`${what}: error status ${e.status}, expected ${status}`);
  for (const s of includes) if (!e.message.includes(s)) p.push(`${what}: message lacks "${s}": ${e.message}`);
  if (e.message.includes(KEY)) p.push(`${what}: the message shows the API key`);
  return p;
}

function checkAnswer(r, { logprobs }) {
  const p = [];
  const v = r.value;
  if (v.label !== 'happy') p.push(`label ${v.label}, expected happy`);
  if (Math.abs((v.scores?.happy ?? 0) - 0.7) > 1e-9) p.push(`scores.happy ${v.scores?.happy}, expected 0.7`);
  if (v.rationale !== 'Raised cheeks and a broad smile.') p.push(`rationale ${JSON.stringify(v.rationale)}`);
  if (v.usage?.prompt_tokens !== 1432 || v.usage?.completion_tokens !== 38) p.push(`usage ${JSON.stringify(v.usage)}`);
  if (JSON.stringify(v.dropped_parameters) !== '[]') p.push(`dropped ${JSON.stringify(v.dropped_parameters)}`);
  if (v.unparsed !== 0) p.push(`unparsed ${v.unparsed}`);
  const run = v.runs?.[0];
  if (!run || run.attempts !== 1 || run.finish_reason !== 'stop' || run.kind !== 'parsed') p.push(`runs[0] ${JSON.stringify(run)?.slice(0, 200)}`);
  if (logprobs && !(v.probabilities?.happy > 0.6)) p.push(`probabilities.happy ${v.probabilities?.happy}, expected > 0.6 from logprobs`);
  if (!logprobs && v.probabilities !== null) p.push(`probabilities ${JSON.stringify(v.probabilities)} from a dialect without logprobs`);
  return p;
}

// ------------------------------------------------------------------ cases
async function main() {
  const fake = await startFakeServer();
  const browser = await startBrowser({ verbose, timeoutS: 60 });
  const page = await browser.openPage('remote');
  const pageOrigin = browser.base;
  console.log(`fake VLM server ${fake.base}, page origin ${pageOrigin} (cross-origin)`);
  const messages = conversation(LABELS);
  const base = (scenario, extra = {}) => ({ endpoint: endpointFor(fake, scenario), model: 'llava:7b', labels: 'dfew', ...extra });
  const answers = {};

  // Each dialect, streamed and not: parsed label, scores, usage, logprobs where the dialect has them.
  for (const d of DIALECTS) {
    for (const stream of [false, true]) {
      const options = base(d, { stream });
      const r = await ask(browser, page, { messages, options });
      const name = `${d} ${stream ? 'streamed' : 'non-streamed'}: answer parsed`;
      if (!r.ok) {
        record(name, [`rejected: ${r.error.message}`]);
        continue;
      }
      const p = checkAnswer(r, { logprobs: d !== 'ollama' });
      answers[`${d}/${stream}`] = r.value.raw;
      if (stream) {
        const text = r.tokens.map(([t]) => t).join('');
        // How many reads the browser makes of the stream varies; more than one shows it streamed.
        if (r.tokens.length < 2) p.push(`onToken called ${r.tokens.length} times`);
        if (text !== r.value.raw) p.push('the onToken pieces do not add up to the answer');
      } else if (r.tokens.length) p.push('onToken called without streaming');
      const seen = await fake.seen();
      const [post] = postsTo(seen, options.endpoint);
      const preflight = seen.find((x) => x.method === 'OPTIONS' && x.path === post?.path);
      if (!post) p.push('the server saw no POST');
      else {
        if (post.body.stream !== stream) p.push(`sent stream=${post.body.stream}`);
        if (stream !== Boolean(post.body.stream_options?.include_usage)) p.push('stream_options.include_usage not as expected');
        if (post.body.messages?.[1]?.content?.[1]?.image_url?.url !== PIXEL) p.push('the image did not arrive as sent');
        if (header(post, 'origin') !== pageOrigin) p.push(`Origin ${header(post, 'origin')}, expected ${pageOrigin}`);
        if (header(post, 'authorization')) p.push('an Authorization header without a key');
      }
      if (!preflight || !/content-type/i.test(header(preflight, 'access-control-request-headers') ?? '')) p.push('no CORS preflight for Content-Type');
      const usageFrom = stream ? 'usage from the final usage-only chunk' : 'usage from the body';
      const ok = record(name, p, `${r.ms.toFixed(0)} ms, ${stream ? `${r.tokens.length} tokens streamed, ` : ''}${usageFrom}`);
      cell(stream ? 'streamed answer → label, scores, rationale' : 'non-streamed answer → label, scores, rationale', d, ok);
      if (stream) cell('final usage-only chunk', d, ok);
      cell(d === 'ollama' ? 'no logprobs → probabilities null' : 'logprobs → label probabilities', d, ok);
      cell('CORS preflight (Content-Type)', d, ok);
    }
  }
  {
    const differ = DIALECTS.filter((d) => answers[`${d}/true`] === undefined || answers[`${d}/true`] !== answers[`${d}/false`]);
    record('streamed text equals non-streamed text in every dialect', differ.map((d) => `${d} differs`));
  }

  // SSE split at every byte and in odd chunks with pauses.
  for (const scenario of ['bytes-vllm', 'bytes-llamacpp', 'bytes-ollama', 'odd-llamacpp', 'odd-vllm']) {
    const d = scenario.split('-')[1];
    const r = await ask(browser, page, { messages, options: base(scenario, { stream: true }) });
    const p = r.ok ? checkAnswer(r, { logprobs: d !== 'ollama' }) : [`rejected: ${r.error.message}`];
    if (r.ok && r.value.usage?.total_tokens !== 1470) p.push('the final usage-only chunk was lost');
    const what = scenario.startsWith('bytes') ? 'SSE one byte per read' : 'SSE 13-byte reads, 1 ms apart';
    cell(what, d, record(`${what} (${d})`, p, `${r.ms.toFixed(0)} ms, ${r.tokens.length} tokens`));
  }

  // 401: the key goes in the Authorization header only and never shows up in the error.
  {
    const options = base('unauthorized', { apiKey: KEY });
    const r = await ask(browser, page, { messages, options });
    const p = expectError(r, '401', { kind: 'unauthorized', status: 401, includes: ['401', 'Incorrect API key provided', 'options.apiKey'] });
    const seen = await fake.seen();
    const [post] = postsTo(seen, options.endpoint);
    if (header(post ?? { headers: [] }, 'authorization') !== `Bearer ${KEY}`) p.push('the key did not arrive in the Authorization header');
    const preflight = seen.find((x) => x.method === 'OPTIONS' && x.path === post?.path);
    if (!/authorization/i.test(header(preflight ?? { headers: [] }, 'access-control-request-headers') ?? '')) p.push('no CORS preflight for Authorization');
    if (header(preflight ?? { headers: [] }, 'authorization')) p.push('the preflight carried the key');
    cell('401 (OpenAI shape), key only in the header, preflight for Authorization', 'other', record('401 names the problem, key only in the header', p, r.ok ? '' : r.error.message));
  }

  // Ollama's 403 for a refused origin: readable (server adds CORS headers) and as real Ollama
  // sends it (no CORS headers at all, so the browser shows only a TypeError).
  {
    const r = await ask(browser, page, { messages, options: base('ollama-origin') });
    const p = expectError(r, '403', { kind: 'origin_not_allowed', status: 403, includes: ['403', `OLLAMA_ORIGINS=${pageOrigin}`] });
    cell('403 empty body (readable) → OLLAMA_ORIGINS', 'ollama', record('Ollama 403 (empty body) → how to set OLLAMA_ORIGINS', p, r.ok ? '' : r.error.message.slice(0, 90)));
  }
  for (const [scenario, what] of [
    ['ollama-refuses-origin', 'Ollama refusing the origin (403, no CORS headers)'],
    ['nocors', 'a server without CORS headers'],
  ]) {
    const r = await ask(browser, page, { messages, options: base(scenario) });
    const p = expectError(r, what, { kind: 'network', includes: ['answered, but', pageOrigin, 'OLLAMA_ORIGINS', '--allowed-origins', 'llama.cpp'] });
    cell('origin refused without CORS headers → CORS explanation', scenario === 'nocors' ? 'vllm' : 'ollama', record(`${what} → CORS explanation`, p, r.ok ? '' : r.error.message.slice(0, 100)));
  }
  {
    // A port that was just free: nothing listens there.
    const probe = net.createServer();
    await new Promise((res) => probe.listen(0, '127.0.0.1', res));
    const port = probe.address().port;
    await new Promise((res) => probe.close(res));
    const endpoint = `http://127.0.0.1:${port}/v1`;
    const r = await ask(browser, page, { messages, options: { endpoint, model: 'm' } });
    const p = expectError(r, 'unreachable', { kind: 'network', includes: ['could not reach', `${endpoint}/chat/completions`, 'OLLAMA_ORIGINS'] });
    cell('unreachable server → says so', 'other', record('unreachable server → says so', p, r.ok ? '' : r.error.message.slice(0, 90)));
  }

  // 429 with Retry-After exposed (1 s; the default would be 5 s) and hidden (30 s, unreadable: the 300 ms default backoff).
  {
    const options = base('ratelimit', { retryDelayMs: 5000 });
    const r = await ask(browser, page, { messages, options });
    const p = r.ok ? checkAnswer({ value: { ...r.value, runs: [{ ...r.value.runs[0], attempts: 1 }] } }, { logprobs: true }) : [`rejected: ${r.error.message}`];
    if (r.ok && r.value.runs[0].attempts !== 2) p.push(`attempts ${r.value.runs[0].attempts}, expected 2`);
    if (r.ms < 950 || r.ms > 4000) p.push(`took ${r.ms.toFixed(0)} ms: Retry-After: 1 was not honoured`);
    cell('429 + exposed Retry-After, then answer', 'vllm', record('429 with exposed Retry-After: 1 → waits 1 s, then answer', p, `${r.ms.toFixed(0)} ms`));
  }
  {
    const options = base('ratelimit-hidden', { retryDelayMs: 300 });
    const r = await ask(browser, page, { messages, options });
    const p = r.ok ? [] : [`rejected: ${r.error.message}`];
    if (r.ok && (r.value.label !== 'happy' || r.value.runs[0].attempts !== 2)) p.push(`label ${r.value.label}, attempts ${r.value.runs[0].attempts}`);
    if (r.ms < 290 || r.ms > 5000) p.push(`took ${r.ms.toFixed(0)} ms: expected the 300 ms default backoff`);
    cell('429 + hidden Retry-After → default backoff, then answer', 'vllm', record('429 with Retry-After not exposed → bounded default backoff, then answer', p, `${r.ms.toFixed(0)} ms`));
  }
  {
    const options = base('unavailable');
    const r = await ask(browser, page, { messages, options });
    const p = expectError(r, '503', { kind: 'unavailable', status: 503, includes: ['503', 'server busy'] });
    const n = postsTo(await fake.seen(), options.endpoint).length;
    if (n !== 4) p.push(`${n} POSTs, expected 1 try + 3 retries`);
    cell('503 → 3 retries, then error', 'ollama', record('503 → retried 3 times, then a clear error', p, `${n} POSTs`));
  }

  // The other faults, one sentence each.
  for (const [scenario, what, kind, status, includes, shape] of [
    ['server-error', '500', 'server_error', 500, ['500', 'failed to decode image'], 'llamacpp'],
    ['too-large', '413 (nginx page)', 'payload_too_large', 413, ['413 Request Entity Too Large nginx', 'fewer or smaller images'], 'other'],
    ['model-missing', '404 model', 'model_not_found', 404, ['404', 'llava:7b', 'ollama pull'], 'ollama'],
    ['wrong-path', '404 path', 'not_found', 404, ['404 page not found', 'should end in /v1'], 'ollama'],
    ['bad-request', '400 naming nothing droppable', 'bad_request', 400, ['400', 'messages: field required'], 'other'],
  ]) {
    const r = await ask(browser, page, { messages, options: base(scenario) });
    const p = expectError(r, what, { kind, status, includes });
    cell(`${what} → error`, shape, record(`${what} → ${kind}`, p, r.ok ? '' : r.error.message.slice(0, 90)));
  }

  // Image input not supported → the error offers the text-only mode, which then sends no pixel.
  {
    const options = base('no-images');
    const r = await ask(browser, page, { messages, options });
    const p = expectError(r, 'image not supported', { kind: 'image_unsupported', includes: ['does not accept images', 'textOnly'] });
    const textOnly = { ...options, textOnly: true };
    const again = await ask(browser, page, { messages, options: textOnly });
    if (!again.ok) p.push(`text-only retry rejected: ${again.error.message}`);
    else if (again.value.label !== 'happy') p.push(`text-only label ${again.value.label}`);
    const posts = postsTo(await fake.seen(), options.endpoint);
    const last = JSON.stringify(posts.at(-1)?.body ?? {});
    if (posts.length !== 2 || last.includes('image_url') || last.includes('data:image')) p.push('the text-only request carried an image');
    if (!last.includes('lip-corner pull')) p.push('the text-only request lost the text');
    cell('image input not supported → textOnly sends no pixel', 'llamacpp', record('image input not supported → text-only mode sends no pixel', p));
  }

  // A rejected response_format is dropped and the request sent again.
  {
    const options = base('reject-format');
    const r = await ask(browser, page, { messages, options });
    const p = r.ok ? [] : [`rejected: ${r.error.message}`];
    if (r.ok && JSON.stringify(r.value.dropped_parameters) !== '["response_format"]') p.push(`dropped ${JSON.stringify(r.value.dropped_parameters)}`);
    if (r.ok && r.value.label !== 'happy') p.push(`label ${r.value.label}`);
    const posts = postsTo(await fake.seen(), options.endpoint);
    if (posts.length !== 2 || !posts[0].body.response_format || posts[1].body.response_format) p.push('not one request with and one without response_format');
    if (posts[1]?.body.top_logprobs !== 5) p.push('the retry lost logprobs');
    cell('400 on response_format → dropped, sent again', 'vllm', record('rejected response_format → dropped, sent again', p));
  }

  // Abort mid-stream, abort before sending, overall timeout: each ends promptly with a named Error.
  {
    const options = base('stall', { stream: true });
    const r = await ask(browser, page, { messages, options, abortAfterTokens: 3 });
    const p = expectError(r, 'abort', { name: 'AbortError', kind: 'aborted', includes: ['aborted'] });
    if (r.tokens.length < 3) p.push(`only ${r.tokens.length} tokens before the abort`);
    if (r.ms > 5000) p.push(`took ${r.ms.toFixed(0)} ms`);
    // The server sees the connection go away.
    let closed = false;
    for (let i = 0; i < 20 && !closed; i++) {
      closed = (await fake.seen()).some((x) => x.method === 'CLOSED' && x.path.startsWith(new URL(options.endpoint).pathname));
      if (!closed) await new Promise((res) => setTimeout(res, 100));
    }
    if (!closed) p.push('the server never saw the connection close');
    cell('abort mid-stream → AbortError', 'vllm', record('abort mid-stream → AbortError, connection closed', p, `${r.tokens.length} tokens, ${r.ms.toFixed(0)} ms`));
  }
  {
    const r = await ask(browser, page, { messages, options: base('ollama', { stream: true }), throwInOnToken: true });
    const p = expectError(r, 'onToken throws', { includes: ['the page failed to show a token'] });
    record("onToken throws → askRemote rejects with the page's error", p);
  }
  {
    const options = base('vllm');
    const r = await ask(browser, page, { messages, options, abortBefore: true });
    const p = expectError(r, 'pre-aborted', { name: 'AbortError' });
    if (postsTo(await fake.seen(), options.endpoint).length) p.push('a request went out after the signal had aborted');
    record('signal already aborted → AbortError, nothing sent', p);
  }
  {
    const r = await ask(browser, page, { messages, options: base('stall', { stream: true, timeoutMs: 800 }) });
    const p = expectError(r, 'timeout', { name: 'TimeoutError', kind: 'timeout', includes: ['800 ms', 'timeoutMs'] });
    if (r.ms > 4000) p.push(`took ${r.ms.toFixed(0)} ms`);
    cell('stalled stream → TimeoutError', 'vllm', record('stalled server → TimeoutError after timeoutMs', p, `${r.ms.toFixed(0)} ms`));
  }

  // Preview: exactly what would be sent, key redacted, nothing sent.
  {
    const options = base('vllm', { apiKey: KEY, stream: true });
    const sentTo = async () => (await fake.seen()).filter((x) => x.path.startsWith(new URL(options.endpoint).pathname)).length;
    const before = await sentTo();
    const res = await browser.call(page, 'preview', async ({ messages, options }) => window.capture(() => window.toPlain(window.emolens.previewRemote(messages, options))), { messages, options });
    const text = await browser.call(page, 'preview text-only', async ({ messages, options }) => window.capture(() => window.toPlain(window.emolens.previewRemote(messages, { ...options, textOnly: true }))), { messages, options });
    const p = [];
    if (!res.ok) p.push(`rejected: ${res.error.message}`);
    else {
      const [req] = res.value.requests;
      if (JSON.stringify(res.value).includes(KEY)) p.push('the preview shows the key');
      if (req.headers.Authorization !== 'Bearer <redacted>') p.push(`Authorization ${req.headers.Authorization}`);
      if (req.url !== `${options.endpoint}/chat/completions` || req.method !== 'POST') p.push(`${req.method} ${req.url}`);
      const body = JSON.parse(req.body);
      if (body.model !== 'llava:7b' || body.stream !== true || !body.stream_options?.include_usage || body.top_logprobs !== 5) p.push(`body ${req.body.slice(0, 160)}`);
      if (JSON.stringify(body.response_format?.json_schema?.schema?.properties?.label?.enum) !== JSON.stringify(LABELS)) p.push('the schema does not list the labels');
      if (res.value.images !== 1 || body.messages[1].content[1].image_url.url !== PIXEL) p.push('the preview does not show the image');
    }
    if (!text.ok || text.value.images !== 0 || text.value.requests[0].body.includes('data:image')) p.push('the text-only preview still carries pixels');
    // Give a request that should not exist time to arrive.
    await new Promise((res) => setTimeout(res, 200));
    if ((await sentTo()) !== before) p.push('the preview sent something');
    record('preview: the exact request, key redacted, nothing sent', p);
  }

  // Label-order permutations: K concurrent requests, at most maxConcurrent in flight; a
  // position-biased model averages out.
  {
    const options = base('biased', { labels: ['happy', 'sad', 'neutral'], permutations: 3, maxConcurrent: 2 });
    const r = await ask(browser, page, { options, functionMessages: true });
    const p = r.ok ? [] : [`rejected: ${r.error.message}`];
    const posts = postsTo(await fake.seen(), options.endpoint);
    const firsts = posts.map((x) => x.body.messages[0].content.split(': ')[1].split(',')[0]).sort();
    if (JSON.stringify(firsts) !== '["happy","neutral","sad"]') p.push(`first labels ${JSON.stringify(firsts)}`);
    if (r.ok) {
      for (const [k, s] of Object.entries(r.value.scores ?? {})) if (Math.abs(s - 1 / 3) > 1e-9) p.push(`score ${k} ${s}`);
      if (r.value.runs.length !== 3 || r.value.usage?.completion_tokens !== 3 * 38) p.push(`runs ${r.value.runs.length}, usage ${JSON.stringify(r.value.usage)}`);
    }
    const peak = (await fake.stats()).peak[new URL(options.endpoint).pathname.split('/').slice(1, 3).join('/')];
    if (peak !== 2) p.push(`${peak} requests in flight at once, expected 2 (maxConcurrent)`);
    cell('label-order permutations, bounded concurrency', 'vllm', record('3 label orders, at most 2 in flight, bias averaged out', p, `peak ${peak}, ${r.ms.toFixed(0)} ms`));
  }
  {
    // The prompt builder's whole output: one request per label order it lists.
    const orders = [LABELS, [...LABELS.slice(3), ...LABELS.slice(0, 3)]];
    const prompt = { labels: LABELS, requests: orders.map((o) => ({ label_order: o, messages: conversation(o), tokens: {} })) };
    const options = { ...base('ollama'), labels: undefined };
    const r = await ask(browser, page, { messages: prompt, options });
    const p = r.ok ? [] : [`rejected: ${r.error.message}`];
    if (r.ok && (JSON.stringify(r.value.orders) !== JSON.stringify(orders) || r.value.label !== 'happy')) p.push(`orders ${JSON.stringify(r.value.orders)}`);
    if (postsTo(await fake.seen(), options.endpoint).length !== 2) p.push('not one request per label order');
    cell("emolens prompt's output as input", 'ollama', record("emolens prompt's output {labels, requests} → one request per order", p));
  }
  {
    const r = await ask(browser, page, { messages, options: base('garbage') });
    const p = r.ok ? [] : [`rejected: ${r.error.message}`];
    if (r.ok && (r.value.label !== null || r.value.scores !== null || r.value.unparsed !== 1 || r.value.runs[0].kind !== 'unparsed' || !r.value.raw.includes("can't determine"))) p.push(`result ${JSON.stringify(r.value).slice(0, 200)}`);
    cell('unparseable answer → explicit unparsed', 'ollama', record('an answer naming no label → explicit unparsed result with the raw text', p));
  }

  // Hostile servers (issue 14): the right answer or a named error, promptly; the page survives.
  for (const scenario of ['unicode', 'kelvin']) {
    for (const stream of [false, true]) {
      const r = await ask(browser, page, { messages, options: base(scenario, { stream }) });
      const p = r.ok ? [] : [`rejected: ${r.error.message}`];
      if (r.ok && r.value.label !== 'happy') p.push(`label ${r.value.label}`);
      cell('İ / K before the answer → happy', 'other', record(`${scenario} characters before the JSON (stream ${stream}) → happy`, p));
    }
  }
  for (const [scenario, stream, option, includes] of [
    ['endless', false, 'maxResponseBytes', 'response longer than 1048576 bytes'],
    ['endless-stream', true, 'maxResponseBytes', 'response longer than 1048576 bytes'],
    ['endless-line', true, 'maxSseLineBytes', 'server-sent-events line longer than 65536 bytes'],
  ]) {
    // For the endless line, a response limit far above the line's, so that a large first chunk
    // cannot reach the response limit before the line limit is checked.
    const maxResponseBytes = scenario === 'endless-line' ? 1 << 26 : 1 << 20;
    const options = base(scenario, { stream, maxResponseBytes, maxSseLineBytes: 1 << 16, timeoutMs: 20000 });
    const r = await ask(browser, page, { messages, options });
    const p = expectError(r, scenario, { kind: 'too_large', includes: [includes, `options.${option}`] });
    if (r.ms > 10000) p.push(`took ${r.ms.toFixed(0)} ms`);
    cell('a body that never ends → too_large', 'other', record(`${scenario}: a 200 that never ends → too_large at the limit`, p, `${r.ms.toFixed(0)} ms`));
  }
  {
    const r = await ask(browser, page, { messages, options: base('done-open', { stream: true, timeoutMs: 20000 }) });
    const p = r.ok ? [] : [`rejected: ${r.error.message}`];
    if (r.ok && r.value.label !== 'happy') p.push(`label ${r.value.label}`);
    if (r.ms > 5000) p.push(`took ${r.ms.toFixed(0)} ms (waited for the connection to close)`);
    cell('[DONE], connection left open → answer at once', 'vllm', record('[DONE] then an open connection → the answer at once', p, `${r.ms.toFixed(0)} ms`));
  }
  {
    const options = base('redirect', { apiKey: KEY });
    const r = await ask(browser, page, { messages, options });
    const p = expectError(r, 'redirect', { kind: 'redirect', includes: ['not followed'] });
    if (r.ok === false && r.error.message.includes('s3cret')) p.push('the message shows the signature');
    const followed = (await fake.seen()).filter((x) => x.method === 'POST' && x.path.startsWith('/vllm/redirected'));
    if (followed.length) p.push('the redirect was followed: the body went to its target');
    cell('307 redirect → not followed', 'other', record('a 307 redirect → reported, the body not sent again', p));
  }
  {
    const p = [];
    for (const endpoint of ['http://é/v1', 'http://bücher.example/v1']) {
      for (const fn of ['askRemote', 'previewRemote']) {
        const r = await browser.call(page, `${fn} ${endpoint}`, async ({ fn, messages, endpoint }) => window.capture(() => window.emolens[fn](messages, { endpoint, model: 'm' })), { fn, messages, endpoint });
        p.push(...expectError(r, `${fn} ${endpoint}`, { includes: ['punycode'] }));
      }
    }
    const r = await ask(browser, page, { messages, options: base('vllm') });
    if (!r.ok) p.push(`the page no longer answers after the bad endpoints: ${r.error.message}`);
    record('a non-ASCII endpoint host → Error naming punycode (askRemote, previewRemote), the page lives on', p);
  }

  // Bad input: an Error with a sentence, never a panic.
  {
    const p = [];
    for (const [what, msgs, options, includes] of [
      ['no endpoint', messages, { model: 'm' }, 'options.endpoint'],
      ['no model', messages, { endpoint: fake.base + '/vllm/x/v1' }, 'options.model'],
      ['key in the URL', messages, { endpoint: `${fake.base}/v1?api_key=${KEY}`, model: 'm' }, 'credentials'],
      ['bad messages', [{ role: 'robot', content: 'x' }], base('vllm'), "unknown role 'robot'"],
      ['bad part', [{ role: 'user', content: [{ type: 'video' }] }], base('vllm'), "unknown part type 'video'"],
      ['permutations with one order', messages, base('vllm', { permutations: 2 }), 'function (labelOrder)'],
      ['bad labels', messages, base('vllm', { labels: 42 }), 'options.labels'],
      ['bad signal', messages, base('vllm', { signal: 'stop' }), 'AbortSignal'],
    ]) {
      const r = await browser.call(page, what, async ({ msgs, options }) => window.capture(() => window.emolens.askRemote(msgs, options)), { msgs, options });
      p.push(...expectError(r, what, { includes: [includes] }));
    }
    record('bad input → Error with a sentence', p);
  }

  // The demo's VLM panel, remote: preview first (nothing sent), then ask; "send no pixels" sends none.
  {
    const p = [];
    let info = '';
    const demo = await browser.context.newPage();
    try {
      const endpoint = endpointFor(fake, 'vllm');
      await demo.goto(`${browser.base}/index.html?input=photo&backend=cpu&vlm=remote&vlmModel=llava:7b&vlmEndpoint=${encodeURIComponent(endpoint)}`);
      await demo.waitForFunction(() => window.__emolens?.ready && window.__emolens.frames >= 1 && window.__emolens.vlm, null, { timeout: 120_000 });
      await demo.fill('#vlm-key', KEY);
      await demo.click('#vlm-preview');
      const preview = await demo.evaluate(() => document.getElementById('vlm-preview-text').textContent);
      if (!/Bearer <redacted>/.test(preview)) p.push('the preview does not show the redacted Authorization header');
      if (preview.includes(KEY)) p.push('the preview shows the key');
      if (!/1 image\(s\) would be sent/.test(preview)) p.push(`preview: ${preview.slice(0, 80)}`);
      if (postsTo(await fake.seen(), endpoint).length) p.push('the preview sent a request');
      const askDemo = async () => {
        await demo.click('#vlm-ask');
        await demo.waitForFunction(() => window.__emolens.vlm.status !== 'asking' && (window.__emolens.vlm.answer || window.__emolens.vlm.error), null, { timeout: 60_000 });
        return demo.evaluate(() => ({ answer: window.__emolens.vlm.answer, error: window.__emolens.vlm.error, shown: document.getElementById('vlm-answer').textContent }));
      };
      const first = await askDemo();
      if (first.error) p.push(`ask: ${first.error}`);
      else if (first.answer?.label !== 'happy' || !first.shown.includes('happy')) p.push(`answer ${JSON.stringify(first.answer)} shown as ${JSON.stringify(first.shown)}`);
      const [post] = postsTo(await fake.seen(), endpoint);
      const parts = (post?.body.messages ?? []).flatMap((m) => (Array.isArray(m.content) ? m.content : []));
      if (!parts.some((x) => x.type === 'image_url' && /^data:image\/jpeg;base64,/.test(x.image_url?.url))) p.push('the frame was not sent as a JPEG data URL');
      if (!parts.some((x) => x.type === 'text' && /Measured on this frame/.test(x.text))) p.push('the measured probabilities were not sent');
      if (header(post ?? { headers: [] }, 'authorization') !== `Bearer ${KEY}`) p.push('the key did not travel in the Authorization header');
      await demo.check('#vlm-text-only');
      const second = await askDemo();
      const posts = postsTo(await fake.seen(), endpoint);
      if (second.error) p.push(`text-only ask: ${second.error}`);
      if (posts.length !== 2) p.push(`${posts.length} POSTs, expected 2`);
      else if (JSON.stringify(posts[1].body).includes('image_url')) p.push('"send no pixels" still sent an image');
      info = `answer ${first.answer?.label}, ${posts.length} POSTs`;
    } catch (e) {
      p.push(`demo page: ${e.message}`);
    }
    await demo.close().catch(() => {});
    cell("the demo's remote panel (preview, ask, text only)", 'vllm', record('demo: VLM = remote previews (key redacted, nothing sent), asks, and sends no pixels when told', p, info));
  }
  // Over the whole run: the key in no URL the server saw, no header but Authorization, no log line.
  {
    const seen = await fake.seen();
    const p = [];
    for (const r of seen) {
      if (r.path.includes(KEY)) p.push(`the key in a URL: ${r.method} ${r.path}`);
      for (const [k, v] of r.headers) if (v.includes(KEY) && k.toLowerCase() !== 'authorization') p.push(`the key in header ${k}`);
      if (JSON.stringify(r.body).includes(KEY)) p.push(`the key in a body sent to ${r.path}`);
    }
    if (browser.logs.some((l) => l.includes(KEY))) p.push('the key in the console');
    record('the key never in a URL, body, other header or log', p, `${seen.length} requests checked`);
  }

  printTable();
  await browser.close();
  fake.stop();
}

main().then(
  () => finish(),
  (e) => {
    console.log(`FAIL remote browser test crashed: ${e.stack || e}`);
    finish(1);
  },
);
