// The eBPF profiler's debug-info upload sequence, as Alloy's
// pyroscope.ebpf runs it against a Pyroscope endpoint: ShouldInitiateUpload
// (connect-es 2.2.0, in one of its transports); if the answer is yes, the
// file in a plain streamed POST to
// /debuginfo.v1alpha1.DebuginfoService/Upload/<gnu_build_id>; if that
// answered 200, UploadFinished. Prints one JSON line with each step's
// outcome, then "done".
//
//   node debuginfo_upload.js '{"baseUrl": "http://127.0.0.1:P", "mode": MODE,
//       "buildId": "...", "name": "libfoo.so", "size": BYTES,
//       "chunked": true, "h2": false, "stallAfter": BYTES, "stallMs": MS,
//       "headers": {...}, "timeoutMs": 10000}'
//
// MODE: connect-proto | connect-json (HTTP/1.1), grpc (h2c), grpcweb
// (HTTP/1.1). The file is `size` random bytes made while sending, 1 MiB at
// a time, honouring back-pressure; its SHA-256 is printed. `chunked` leaves
// out Content-Length (what Go's client does for the profiler's section
// reader). `h2` uploads over cleartext HTTP/2 (prior knowledge) instead of
// HTTP/1.1. With `stallAfter`, sending pauses for `stallMs` after that many
// bytes, then goes on unless the relay answered meanwhile. `ms` is how long
// the upload took to its answer.
'use strict';
const crypto = require('node:crypto');
const http = require('node:http');
const http2 = require('node:http2');
const path = require('node:path');
const { createClient, ConnectError, Code } = require('@connectrpc/connect');
const {
  createConnectTransport, createGrpcTransport, createGrpcWebTransport,
} = require('@connectrpc/connect-node');
const { DebuginfoService, FileMetadata_Type } = require(
  path.join(__dirname, '..', 'node', 'rpc', 'gen', 'debuginfo', 'v1alpha1', 'debuginfo_pb.js'));

const args = JSON.parse(process.argv[2]);
const transports = {
  'connect-proto': () => createConnectTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: true }),
  'connect-json': () => createConnectTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: false }),
  'grpc': () => createGrpcTransport({ baseUrl: args.baseUrl }),
  'grpcweb': () => createGrpcWebTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: true }),
};
const CHUNK = 1 << 20;

async function call(fn) {
  try {
    return { ok: true, ...(await fn()) };
  } catch (e) {
    const err = ConnectError.from(e);
    return { ok: false, code: Code[err.code], message: err.rawMessage };
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Streams `size` random bytes; resolves with the answer and what was sent.
function upload() {
  return new Promise((resolve) => {
    const url = new URL(`/debuginfo.v1alpha1.DebuginfoService/Upload/${args.buildId}`, args.baseUrl);
    const headers = { ...(args.headers || {}), 'content-type': 'application/octet-stream' };
    if (!args.chunked) headers['content-length'] = String(args.size);
    let session = null;
    let req;
    if (args.h2) {
      session = http2.connect(url.origin);
      session.on('error', () => {});
      req = session.request({ ':method': 'POST', ':path': url.pathname, ...headers });
    } else {
      req = http.request(url, { method: 'POST', headers, agent: false });
    }
    const hash = crypto.createHash('sha256');
    const out = { sent: 0, answered: false };
    const started = Date.now();
    let finished = false;
    const finish = (result) => {
      if (finished) return;
      finished = true;
      if (session) session.close();
      resolve({ ...result, sent: out.sent, sha256: hash.digest('hex'), ms: Date.now() - started });
    };
    // HTTP/1.1 hands over a response stream; HTTP/2 the headers, with the
    // request stream carrying the response body.
    req.on('response', (res) => {
      out.answered = true;
      const status = args.h2 ? res[':status'] : res.statusCode;
      const body = args.h2 ? req : res;
      const parts = [];
      body.on('data', (d) => parts.push(d));
      body.on('end', () => finish({ status, body: Buffer.concat(parts).toString() }));
      body.on('error', (e) => finish({ status, error: String(e) }));
    });
    req.on('error', (e) => finish({ status: 0, error: String(e) }));
    (async () => {
      let stalled = false;
      while (out.sent < args.size && !out.answered) {
        if (args.stallAfter !== undefined && !stalled && out.sent >= args.stallAfter) {
          stalled = true;
          const until = Date.now() + args.stallMs;
          while (Date.now() < until && !out.answered) await sleep(20);
          continue;
        }
        let n = Math.min(CHUNK, args.size - out.sent);
        if (args.stallAfter !== undefined && !stalled) n = Math.min(n, args.stallAfter - out.sent);
        const chunk = crypto.randomBytes(n);
        hash.update(chunk);
        out.sent += n;
        if (!req.write(chunk)) {
          await new Promise((r) => { req.once('drain', r); req.once('close', r); });
        }
        if (req.destroyed) return;
      }
      if (!out.answered) req.end();
    })().catch((e) => finish({ status: 0, error: String(e) }));
  });
}

async function main() {
  const client = createClient(DebuginfoService, transports[args.mode]());
  const opts = { headers: args.headers || {}, timeoutMs: args.timeoutMs || 10000 };
  const result = {};
  result.should = await call(async () => {
    const res = await client.shouldInitiateUpload({
      file: {
        gnuBuildId: args.buildId,
        otelFileId: args.otelFileId || '',
        name: args.name,
        type: FileMetadata_Type.EXECUTABLE_FULL,
      },
    }, opts);
    return { shouldInitiateUpload: res.shouldInitiateUpload, reason: res.reason };
  });
  const go = args.forceUpload || (result.should.ok && result.should.shouldInitiateUpload);
  if (go) {
    result.upload = await upload();
    if (result.upload.status === 200) {
      result.finished = await call(async () => {
        await client.uploadFinished({ gnuBuildId: args.buildId }, opts);
        return {};
      });
    }
  }
  console.log(JSON.stringify(result));
  console.log('done');
}
main().catch((e) => { console.error(e); process.exit(1); });
