//! pyroscope-relay: receives continuous-profiling data over HTTP and routes
//! it to Pyroscope-compatible backends, configured with Grafana Alloy's
//! `pyroscope.*` components.
//!
//! # Layout
//! A request flows one way through these modules:
//! `receive_http` (listener, decode) → `relabel` (labels) → `pipeline`
//! (fan-out through `Receiver`s) → `write` (encode, send).
//! `config` parses the Alloy language, `runtime` builds and reloads the
//! component graph, `codec` holds the wire formats, `admin` serves the
//! process endpoints, `ui` the web UI on them, and `telemetry` the logs
//! and metrics.

#![forbid(unsafe_code)]

pub mod admin;
pub mod archive;
pub mod cli;
pub mod codec;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod pipeline;
pub mod receive_http;
pub mod relabel;
pub mod runtime;
pub mod storage;
pub mod telemetry;
pub mod ui;
pub mod write;
