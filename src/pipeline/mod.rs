//! The data that flows between components and the interface they share.
//!
//! Receivers (`receive_http`) turn requests into a [`Profile`] and hand it to
//! each [`Receiver`] in their `forward_to` list; senders (`write`), stages
//! (`relabel`) and stores install an [`Appender`] behind their own
//! `receiver` export. Nothing else crosses between components but the
//! eBPF profiler's debug-info uploads, which go to the one
//! [`DebuginfoTarget`] a receiver leads to instead of fanning out.

mod debuginfo;
mod error;
mod labels;
mod profile;
mod receiver;
pub mod tap;

pub use debuginfo::{
    DEBUGINFO_SERVICE_PREFIX, DebuginfoCall, DebuginfoMethod, DebuginfoTarget, DebuginfoUpload,
    UploadBody, UploadError,
};
pub use error::AppendError;
pub use labels::{Label, Labels};
pub use profile::{IngestProfile, Payload, Profile, Sample, Series};
pub use receiver::{Appender, Receiver, fan_out, first_debuginfo_target};
