//! URL query components: Go's `url.ParseQuery` / `QueryEscape` rules, and
//! the `name` parameter read from an `/ingest` query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyroscope_relay::codec::{labelset, query};

fuzz_target!(|text: &str| {
    // As a whole query string, the way the receiver reads `name=`.
    if let Some(name) = query::value(text, "name") {
        let _ = labelset::parse(&name);
    }
    let _ = query::unescape(text);
    // Whatever is escaped comes back unchanged, alone or as a pair.
    let escaped = query::escape(text);
    assert_eq!(query::unescape(&escaped).as_deref(), Some(text));
    let pair = format!("{escaped}={escaped}&a=1&b");
    if !text.is_empty() {
        assert_eq!(query::value(&pair, text).as_deref(), Some(text));
    }
});
