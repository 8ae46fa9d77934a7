//! Builds the component graph from a config, runs each component, and
//! reloads it.

mod health;

pub use health::{Health, HealthState};
