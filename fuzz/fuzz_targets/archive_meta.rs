//! An archive record's metadata (origin and labels): decoded, encoded and
//! decoded again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pyroscope_relay::fuzzing::archive_meta(data));
