// Sends push.v1.PusherService/Push calls with @grpc/grpc-js 1.14.7 over
// h2c (messages described at run time by @grpc/proto-loader from the
// repository's proto/), and prints one JSON line with each call's outcome.
//
//   node grpcjs_push.js '{"target": "127.0.0.1:P", "requests": [BASE64 ...],
//                         "gzip": false, "metadata": {...}}'
'use strict';
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const args = JSON.parse(process.argv[2]);
const protoDir = path.join(__dirname, '..', '..', '..', 'proto');
const def = protoLoader.loadSync('push/v1/push.proto', { includeDirs: [protoDir] });
const pkg = grpc.loadPackageDefinition(def);
const Push = def['push.v1.PusherService'].Push;

const options = args.gzip ? { 'grpc.default_compression_algorithm': 2 } : {};
const client = new pkg.push.v1.PusherService(args.target, grpc.credentials.createInsecure(), options);

function call(req) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(args.metadata || {})) md.set(k, v);
    client.Push(req, md, { deadline: Date.now() + 10000 }, (err) => {
      resolve(err ? { ok: false, code: err.code, message: err.details } : { ok: true });
    });
  });
}

async function main() {
  const results = [];
  for (const b64 of args.requests) {
    results.push(await call(Push.requestDeserialize(Buffer.from(b64, 'base64'))));
  }
  client.close();
  console.log(JSON.stringify({ results }));
  console.log('done');
}
main().catch((e) => { console.error(e); process.exit(1); });
