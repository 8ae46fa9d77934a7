//! `pyroscope.relabel`: rewrites or drops each profile's label set with
//! Prometheus relabel rules, then forwards it to every `forward_to` receiver.
//!
//! Both paths are relabeled: each series of a push request (series that are
//! dropped are removed; a request left empty is answered with success without
//! being forwarded) and the labels of an `/ingest` request (whose `name=` the
//! writer rebuilds from them). A dropped profile is a success for the sender,
//! as in Alloy. Results are cached per input label set (see `cache.rs`), and the
//! component counts what it processes ([`Metrics`]).

mod appender;
mod cache;
mod config;
mod metrics;
mod process;
mod rule;
mod template;

#[cfg(test)]
mod tests;

pub use metrics::{ComponentMetrics, Metrics, UnsuffixedCounter};
pub use process::apply;
pub use rule::{
    Action, DEFAULT_REGEX, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR, Rule, RuleConfig, RuleError,
};

use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

use crate::pipeline::Receiver;
use appender::RelabelAppender;
use cache::Cache;

/// Alloy's default `max_cache_size`.
pub const DEFAULT_MAX_CACHE_SIZE: usize = 10_000;

/// The component's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Arguments {
    pub forward_to: Vec<Receiver>,
    /// The `rule` blocks, in order.
    pub rules: Vec<RuleConfig>,
    /// Entries in the result cache; 0 turns caching off.
    pub max_cache_size: usize,
}

/// A running `pyroscope.relabel` component. Its `receiver` export keeps
/// working across [`Relabel::update`]; [`Relabel::stop`] takes it down.
pub struct Relabel {
    receiver: Receiver,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    /// Serializes updates so that each one compares against the last.
    update_lock: Mutex<()>,
}

/// What the appender and the component share.
struct Shared {
    component_id: String,
    state: ArcSwap<State>,
    cache: Cache,
    metrics: ComponentMetrics,
}

/// One consistent configuration, swapped as a whole.
struct State {
    args: Arguments,
    rules: Arc<[Rule]>,
    /// The cache generation that results of `rules` are stored under.
    generation: u64,
}

impl Relabel {
    /// Compiles the rules and routes `receiver` to this component.
    pub fn start(
        component_id: &str,
        receiver: Receiver,
        args: Arguments,
        metrics: Arc<Metrics>,
    ) -> Result<Relabel, RuleError> {
        let rules: Arc<[Rule]> = Rule::compile_all(&args.rules)?.into();
        let handles = metrics.component(component_id);
        let cache = Cache::new(args.max_cache_size, handles.cache_size.clone());
        let generation = cache.generation();
        let shared = Arc::new(Shared {
            component_id: component_id.to_owned(),
            state: ArcSwap::from_pointee(State {
                args,
                rules,
                generation,
            }),
            cache,
            metrics: handles,
        });
        receiver.install(RelabelAppender::new(Arc::clone(&shared)));
        Ok(Relabel {
            receiver,
            shared,
            metrics,
            update_lock: Mutex::new(()),
        })
    }

    /// Applies new arguments atomically. Invalid rules leave the running
    /// configuration untouched. Changed rules empty the cache; a changed
    /// `max_cache_size` resizes it.
    pub fn update(&self, args: Arguments) -> Result<(), RuleError> {
        let _serial = self.update_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.shared.state.load_full();
        let rules_changed = args.rules != current.args.rules;
        let rules = if rules_changed {
            Rule::compile_all(&args.rules)?.into()
        } else {
            Arc::clone(&current.rules)
        };
        // Purge before publishing the new rules: from here on, results of
        // the old rules are refused, and the new ones find an empty cache.
        let generation = if rules_changed {
            self.shared.cache.purge()
        } else {
            current.generation
        };
        if args.max_cache_size != current.args.max_cache_size {
            self.shared.cache.resize(args.max_cache_size);
        }
        self.shared.state.store(Arc::new(State {
            args,
            rules,
            generation,
        }));
        Ok(())
    }

    /// The `receiver` export.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// The `rules` export: the rules in use.
    pub fn rules(&self) -> Vec<RuleConfig> {
        self.shared.state.load().args.rules.clone()
    }

    pub fn component_id(&self) -> &str {
        &self.shared.component_id
    }

    /// Takes the component down: appends to its receiver fail from now on
    /// and its metrics leave the output.
    pub fn stop(self) {
        self.receiver.uninstall();
        self.metrics.remove(&self.shared.component_id);
    }
}
