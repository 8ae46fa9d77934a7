//! The data that flows between components and the interface they share.
//!
//! Receivers (`receive_http`) turn requests into a [`Profile`] and hand it to
//! each [`Receiver`] in their `forward_to` list; senders (`write`), stages
//! (`relabel`) and stores install an [`Appender`] behind their own
//! `receiver` export. Nothing else crosses between components, which is
//! where a durable queue can later sit, except the debug-info uploads of
//! [`debuginfo`], which go to one [`DebuginfoTarget`] a receiver leads to.

mod debuginfo;
mod error;
mod labels;
mod profile;
mod receiver;

pub use debuginfo::{
    DEBUGINFO_SERVICE_PREFIX, DebuginfoCall, DebuginfoMethod, DebuginfoTarget, DebuginfoUpload,
    UploadBody, UploadError,
};
pub use error::AppendError;
pub use labels::{Label, Labels};
pub use profile::{IngestProfile, Payload, Profile, Sample, Series};
pub use receiver::{Appender, Receiver, fan_out, first_debuginfo_target};
