//! Decoding `pyroscope.relabel` arguments from the config language. Each
//! `rule` block is compiled here too, so a bad rule is reported at its line.

use super::{Arguments, DEFAULT_MAX_CACHE_SIZE, Rule, RuleConfig};
use crate::config::{BlockDecoder, DecodeBlock};

impl DecodeBlock for Arguments {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        Arguments {
            forward_to: d.required("forward_to").unwrap_or_default(),
            rules: d.blocks("rule"),
            max_cache_size: d.attr("max_cache_size", DEFAULT_MAX_CACHE_SIZE),
        }
    }
}

impl DecodeBlock for RuleConfig {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let defaults = RuleConfig::default();
        let rule = RuleConfig {
            source_labels: d.attr("source_labels", defaults.source_labels),
            separator: d.attr("separator", defaults.separator),
            regex: d.attr("regex", defaults.regex),
            modulus: d.attr("modulus", defaults.modulus),
            target_label: d.attr("target_label", defaults.target_label),
            replacement: d.attr("replacement", defaults.replacement),
            action: d.attr("action", defaults.action),
        };
        if let Err(e) = Rule::compile(&rule) {
            d.error(e.to_string());
        }
        rule
    }
}
