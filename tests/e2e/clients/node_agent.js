// A small Node application profiled by the real @pyroscope/nodejs agent
// (0.6.x: /ingest with a raw gzipped pprof; 0.4.x: multipart). Run with
// NODE_PATH pointing at the agent's node_modules:
//
//   node node_agent.js '{"serverAddress": URL, "appName": NAME, "seconds": S,
//                        "flushIntervalMs": MS, "tags": {...}, ...}'
//
// Every key other than `seconds` is passed to Pyroscope.init(). It burns CPU
// (partly inside wrapWithLabels({handler: 'work'})) and allocates for S
// seconds, then calls Pyroscope.stop(), which uploads the last profiles,
// and prints `done`.
'use strict';
const Pyroscope = require('@pyroscope/nodejs');

const opts = JSON.parse(process.argv[2]);
const seconds = opts.seconds;
delete opts.seconds;
Pyroscope.init(opts);
Pyroscope.start();

function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
const keep = [];
function spin(ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    fib(18);
    keep.push(Buffer.alloc(4096));
    if (keep.length > 2000) keep.length = 0;
  }
}

const end = Date.now() + seconds * 1000;
function tick() {
  if (Date.now() >= end) {
    Pyroscope.stop().then(() => { console.log('done'); }, (e) => { console.error(e); process.exit(1); });
    return;
  }
  Pyroscope.wrapWithLabels({ handler: 'work' }, () => spin(50));
  spin(50);
  setTimeout(tick, 5);
}
tick();
