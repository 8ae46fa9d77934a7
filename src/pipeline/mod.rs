//! The data that flows between components and the interface they share.
//!
//! Receivers (`receive_http`) turn requests into a [`Profile`] and hand it to
//! each [`Receiver`] in their `forward_to` list; senders (`write`), stages
//! (`relabel`) and stores install an [`Appender`] behind their own
//! `receiver` export. Nothing else crosses between components, which is
//! where a durable queue can later sit.

mod error;
mod labels;
mod profile;
mod receiver;
pub mod tap;

pub use error::AppendError;
pub use labels::{Label, Labels};
pub use profile::{IngestProfile, Payload, Profile, Sample, Series};
pub use receiver::{Appender, Receiver, fan_out};
