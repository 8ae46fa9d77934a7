//! The protobuf messages of Pyroscope's push and debuginfo APIs, generated
//! by `build.rs` from `proto/`. `bytes` fields are [`bytes::Bytes`], so decoding from a
//! `Bytes` buffer shares it instead of copying raw profiles.

/// Package `types.v1`.
pub mod types {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/types.v1.rs"));
    }
}

/// Package `push.v1`.
pub mod push {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/push.v1.rs"));
    }
}

/// Package `debuginfo.v1alpha1`: the messages the debuginfo routes check
/// before relaying them.
pub mod debuginfo {
    pub mod v1alpha1 {
        include!(concat!(env!("OUT_DIR"), "/debuginfo.v1alpha1.rs"));
    }
}

pub use push::v1::{PushRequest, PushResponse, RawProfileSeries, RawSample};
pub use types::v1::{LabelPair, ProfileAnnotation};

/// Package `perftools.profiles`: the pprof format.
pub mod pprof {
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.rs"));
}
