//! The `/ingest` `name` parameter: `service{key=value,...}`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyroscope_relay::codec::labelset::{
    SERVICE_NAME_LABEL, normalized, parse, validate_service_name,
};

fuzz_target!(|name: &str| {
    let Ok(labels) = parse(name) else { return };
    // Nothing is escaped in the grammar, so only labels whose text holds
    // none of its delimiters come back the same from their rendering.
    let service = labels.get(SERVICE_NAME_LABEL).unwrap_or_default();
    let delimiter_free = labels
        .iter()
        .all(|l| !l.value.contains([',', '}']) && !l.name.contains([',', '}', '=', '{']));
    if delimiter_free && validate_service_name(service).is_ok() {
        let rendered = normalized(&labels);
        assert_eq!(
            parse(&rendered).as_ref(),
            Ok(&labels),
            "re-parsing {rendered:?}"
        );
    }
});
