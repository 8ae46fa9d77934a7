//! Files a component reads when it starts or updates (certificates,
//! keys, CAs). A reload compares their contents as well as the decoded
//! arguments, so a certificate rotated at the same path is picked up by a
//! SIGHUP even though the config did not change.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::registry::Args;

/// What the referenced files held when the component last applied them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Fingerprint(Vec<(String, Option<u64>)>);

impl Fingerprint {
    /// Reads every file `args` refers to. An unreadable file counts as a
    /// state of its own, so becoming readable again is a change too.
    pub fn of(args: &Args) -> Self {
        let mut paths = args.referenced_files();
        paths.sort_unstable();
        paths.dedup();
        Fingerprint(
            paths
                .into_iter()
                .map(|path| {
                    let hash = std::fs::read(path).ok().map(|bytes| {
                        let mut h = DefaultHasher::new();
                        bytes.hash(&mut h);
                        h.finish()
                    });
                    (path.to_owned(), hash)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write;

    #[test]
    fn changes_with_file_contents_not_with_rereading() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "one").unwrap();
        let mut endpoint = write::EndpointConfig::new("https://h");
        endpoint.http_client.tls_config.ca_file = ca.to_str().unwrap().to_owned();
        let args = Args::Write(write::Arguments {
            endpoints: vec![endpoint],
            ..Default::default()
        });
        let first = Fingerprint::of(&args);
        assert_eq!(first, Fingerprint::of(&args));
        std::fs::write(&ca, "two").unwrap();
        let rotated = Fingerprint::of(&args);
        assert_ne!(first, rotated);
        std::fs::remove_file(&ca).unwrap();
        assert_ne!(rotated, Fingerprint::of(&args));
        assert_eq!(
            Fingerprint::of(&Args::Write(write::Arguments::default())),
            Fingerprint::default()
        );
    }
}
