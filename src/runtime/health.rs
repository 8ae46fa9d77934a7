//! Each component's health, as `/-/healthy` reports it.

use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    Healthy,
    Unhealthy(String),
}

/// A component's health cell, shared between the component (which writes
/// it) and the runtime (which reads it). Cloning shares the cell.
#[derive(Debug, Clone)]
pub struct Health(Arc<Mutex<HealthState>>);

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(HealthState::Healthy)))
    }

    pub fn set_healthy(&self) {
        *self.lock() = HealthState::Healthy;
    }

    pub fn set_unhealthy(&self, reason: impl Into<String>) {
        *self.lock() = HealthState::Unhealthy(reason.into());
    }

    pub fn state(&self) -> HealthState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        // A panic while holding this lock cannot leave the state half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
