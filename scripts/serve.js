#!/usr/bin/env node
// Tiny static file server for the emolens demo (www/dist). No dependencies.
//
//   node scripts/serve.js [ROOT]        # ROOT defaults to www/dist; PORT env (default 8080), HOST env (default 127.0.0.1)
//
// Also usable as a module (the browser test does): createHandler({ root, mounts }) returns a
// (req, res) request handler and createServer(...) an http.Server around it; `mounts` maps a URL
// prefix such as '/parity/' to another directory.
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mov': 'video/quicktime',
};

function mimeType(file) {
  return MIME[path.extname(file).toLowerCase()] || 'application/octet-stream';
}

// Resolves a URL path inside `dir`, refusing anything that escapes it.
function resolveInside(dir, urlPath) {
  const rel = path.normalize(decodeURIComponent(urlPath)).replace(/^([/\\])+/, '');
  const full = path.resolve(dir, rel);
  const base = path.resolve(dir);
  if (full !== base && !full.startsWith(base + path.sep)) return null;
  return full;
}

function createHandler({ root, mounts = {}, log = false } = {}) {
  const dirs = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  return (req, res) => {
    const send = (code, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      if (log) console.log(`${code} ${req.method} ${req.url}`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    let urlPath;
    try {
      urlPath = new URL(req.url, 'http://localhost').pathname;
    } catch {
      return send(400, 'bad request\n');
    }
    let dir = root;
    let sub = urlPath;
    for (const [prefix, d] of dirs) {
      if (urlPath.startsWith(prefix)) {
        dir = d;
        sub = urlPath.slice(prefix.length);
        break;
      }
    }
    let file;
    try {
      file = resolveInside(dir, sub);
    } catch {
      return send(400, 'bad request\n');
    }
    if (!file) return send(403, 'forbidden\n');
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        file = path.join(file, 'index.html');
        try {
          st = fs.statSync(file);
        } catch (e) {
          err = e;
        }
      }
      if (err || !st.isFile()) return send(404, `not found: ${urlPath}\n`);
      const headers = {
        'Content-Type': mimeType(file),
        'Content-Length': st.size,
        'Cache-Control': 'no-store',
        'Accept-Ranges': 'bytes',
      };
      // Range requests: <video> seeks with them.
      const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
      if (range && (range[1] || range[2])) {
        let start = range[1] ? Number(range[1]) : st.size - Number(range[2]);
        let end = range[1] && range[2] ? Number(range[2]) : st.size - 1;
        start = Math.max(0, start);
        end = Math.min(end, st.size - 1);
        if (start > end) {
          res.writeHead(416, { 'Content-Range': `bytes */${st.size}` });
          return res.end();
        }
        headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
        headers['Content-Length'] = end - start + 1;
        res.writeHead(206, headers);
        if (req.method === 'HEAD') return res.end();
        return fs.createReadStream(file, { start, end }).pipe(res);
      }
      res.writeHead(200, headers);
      if (log) console.log(`200 ${req.method} ${req.url}`);
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(file).pipe(res);
    });
  };
}

function createServer(opts) {
  return http.createServer(createHandler(opts));
}

module.exports = { createHandler, createServer, mimeType, MIME };

if (require.main === module) {
  const root = path.resolve(process.argv[2] || path.join(__dirname, '..', 'www', 'dist'));
  const port = Number(process.env.PORT || 8080);
  const host = process.env.HOST || '127.0.0.1';
  if (!fs.existsSync(path.join(root, 'index.html'))) {
    console.error(`serve.js: ${root}/index.html not found; build the demo first (npx webpack --mode production)`);
    process.exit(1);
  }
  const server = createServer({ root, log: !!process.env.SERVE_LOG });
  server.on('error', (e) => {
    console.error(`serve.js: cannot listen on ${host}:${port}: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => console.log(`emolens demo: serving ${root} on http://${host}:${port}/`));
}
