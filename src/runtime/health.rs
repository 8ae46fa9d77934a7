//! Each component's health, as `/-/healthy` reports it.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    Healthy,
    Unhealthy(String),
}

/// A component's health cell, shared between the component (which writes
/// it) and the runtime (which reads it), with when it last changed.
/// Cloning shares the cell.
#[derive(Debug, Clone)]
pub struct Health(Arc<Mutex<(HealthState, SystemTime)>>);

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new((
            HealthState::Healthy,
            SystemTime::now(),
        ))))
    }

    pub fn set_healthy(&self) {
        self.set(HealthState::Healthy);
    }

    pub fn set_unhealthy(&self, reason: impl Into<String>) {
        self.set(HealthState::Unhealthy(reason.into()));
    }

    fn set(&self, state: HealthState) {
        let mut cell = self.lock();
        if cell.0 != state {
            *cell = (state, SystemTime::now());
        }
    }

    pub fn state(&self) -> HealthState {
        self.lock().0.clone()
    }

    /// When the state last changed (or the component started).
    pub fn updated(&self) -> SystemTime {
        self.lock().1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HealthState, SystemTime)> {
        // A panic while holding this lock cannot leave the state half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
