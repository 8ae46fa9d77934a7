//! Decoding `pyroscope.archive` arguments from the config language.

use std::path::PathBuf;

use super::Arguments;
use crate::config::{BlockDecoder, ByteSize, DecodeBlock};

impl DecodeBlock for Arguments {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let defaults = Arguments::default();
        let path: String = d.attr("path", String::new());
        let retention = d.attr("retention", defaults.retention);
        let max_size = d.attr("max_size", ByteSize(defaults.max_size)).0;
        if retention.is_zero() {
            let span = d.attr_span("retention").unwrap_or(d.header_span());
            d.error_at(span, "retention must be longer than 0s");
        }
        if max_size == 0 {
            let span = d.attr_span("max_size").unwrap_or(d.header_span());
            d.error_at(span, "max_size must be larger than 0 bytes");
        }
        Arguments {
            path: (!path.is_empty()).then(|| PathBuf::from(path)),
            retention,
            max_size,
        }
    }
}
