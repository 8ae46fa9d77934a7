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

impl From<crate::storage::StorageError> for ArchiveError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as S;
        match e {
            S::Locked(dir) => ArchiveError::Locked(dir),
            S::ReadOnly(dir) => ArchiveError::ReadOnly(dir),
            S::Closed => ArchiveError::Closed,
            S::Write(why) => ArchiveError::Write(why),
            S::Corrupt(why) => ArchiveError::Corrupt(why),
            S::TooLarge { size, max } => ArchiveError::TooLarge { size, max },
            S::Refused(why) => ArchiveError::InvalidArgument(why),
            S::Io {
                context,
                message,
                kind,
            } => ArchiveError::Io {
                context,
                source: io::Error::new(kind, message),
            },
        }
    }
}

impl ArchiveError {
    pub(crate) fn io(context: impl std::fmt::Display, path: &Path, source: io::Error) -> Self {
        ArchiveError::Io {
            context: format!("{context} {}", path.display()),
            source,
        }
    }
}
