//! The segment log under the archive and the write queue, opened after a
//! crash: arbitrary bytes as segment files, recovered and read back (see
//! `pyroscope_relay::fuzzing::segment_log_recovery` for the input layout).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pyroscope_relay::fuzzing::segment_log_recovery(data));
