//! The archive's one error type.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("archive {} is in use by another process", .0.display())]
    Locked(PathBuf),
    #[error("archive {} is opened read-only", .0.display())]
    ReadOnly(PathBuf),
    #[error("archive is closed")]
    Closed,
    #[error("a write to the archive failed and it accepts no more writes until restarted: {0}")]
    Failed(String),
    #[error("write failed: {0}")]
    Write(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error(
        "profile of {size} bytes does not fit the archive's max_size of {max} bytes with its header"
    )]
    TooLarge { size: u64, max: u64 },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("profile {0} not found")]
    NotFound(String),
}

impl ArchiveError {
    pub(crate) fn io(context: impl std::fmt::Display, path: &Path, source: io::Error) -> Self {
        ArchiveError::Io {
            context: format!("{context} {}", path.display()),
            source,
        }
    }
}
