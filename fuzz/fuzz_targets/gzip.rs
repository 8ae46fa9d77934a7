//! Bounded gzip decompression: never more than the limit comes out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyroscope_relay::codec::compress::{gunzip_limited, gzip, is_gzip};

fuzz_target!(|data: &[u8]| {
    let Some((limit_bytes, input)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Limits up to 64 KiB keep each run fast while still cutting off
    // most seeds part way.
    let limit = usize::from(u16::from_le_bytes(*limit_bytes));
    let _ = is_gzip(input);
    match gunzip_limited(input, limit) {
        Ok(out) => {
            assert!(
                out.len() <= limit,
                "{} bytes out of a {limit} limit",
                out.len()
            );
            assert_eq!(
                gunzip_limited(&gzip(&out), limit).ok().as_deref(),
                Some(&out[..])
            );
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
