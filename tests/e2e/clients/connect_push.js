// Sends push.v1.PusherService/Push requests with connect-es 2.2.0
// (@connectrpc/connect-node) in one of its transports, and prints one JSON
// line with each call's outcome.
//
//   node connect_push.js '{"baseUrl": "http://127.0.0.1:P", "mode": MODE,
//                          "requests": [BASE64 PushRequest, ...],
//                          "headers": {...}, "timeoutMs": 10000}'
//
// The argument may also be @FILE, a file holding that JSON (for request
// lists longer than one command-line argument may be).
//
// MODE: connect-proto | connect-json | connect-proto-gzip (HTTP/1.1),
// connect-h2 (h2c), grpc | grpc-gzip (h2c), grpcweb | grpcweb-json (HTTP/1.1).
'use strict';
const path = require('node:path');
const { createClient, ConnectError, Code } = require('@connectrpc/connect');
const {
  createConnectTransport, createGrpcTransport, createGrpcWebTransport, compressionGzip,
} = require('@connectrpc/connect-node');
const { fromBinary } = require('@bufbuild/protobuf');
const { PusherService, PushRequestSchema } = require(
  path.join(__dirname, '..', 'node', 'rpc', 'gen', 'push', 'v1', 'push_pb.js'));

const arg = process.argv[2];
const args = JSON.parse(arg.startsWith('@') ? require('node:fs').readFileSync(arg.slice(1), 'utf8') : arg);
const gzip = { sendCompression: compressionGzip, compressMinBytes: 0 };
const transports = {
  'connect-proto': () => createConnectTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: true }),
  'connect-json': () => createConnectTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: false }),
  'connect-proto-gzip': () => createConnectTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: true, ...gzip }),
  'connect-h2': () => createConnectTransport({ baseUrl: args.baseUrl, httpVersion: '2', useBinaryFormat: true }),
  'grpc': () => createGrpcTransport({ baseUrl: args.baseUrl }),
  'grpc-gzip': () => createGrpcTransport({ baseUrl: args.baseUrl, ...gzip }),
  'grpcweb': () => createGrpcWebTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: true }),
  'grpcweb-json': () => createGrpcWebTransport({ baseUrl: args.baseUrl, httpVersion: '1.1', useBinaryFormat: false }),
};

async function main() {
  const client = createClient(PusherService, transports[args.mode]());
  const results = [];
  for (const b64 of args.requests) {
    const req = fromBinary(PushRequestSchema, Buffer.from(b64, 'base64'));
    try {
      await client.push(req, { headers: args.headers || {}, timeoutMs: args.timeoutMs || 10000 });
      results.push({ ok: true });
    } catch (e) {
      const err = ConnectError.from(e);
      results.push({ ok: false, code: Code[err.code], message: err.rawMessage });
    }
  }
  console.log(JSON.stringify({ results }));
  console.log('done');
}
main().catch((e) => { console.error(e); process.exit(1); });
