//! The Alloy config language: lexer, parser, reference resolution,
//! ordering, expression evaluation and component argument decoding, all
//! through the same `plan` a load or reload runs.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use pyroscope_relay::config::SourceMap;
use pyroscope_relay::runtime::plan;

fuzz_target!(|text: &str| {
    let mut map = SourceMap::new();
    map.add("fuzz.alloy", text);
    if let Err(err) = plan(&map, &HashMap::new()) {
        // Rendering points into the source with carets: spans must fit it.
        let _ = err.to_string();
    }
});
