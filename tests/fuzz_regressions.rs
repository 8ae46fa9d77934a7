//! Every input a fuzz target (`fuzz/`, docs/fuzzing.md) ever failed on,
//! run again through the same entry point in the normal test suite. The
//! inputs are in `tests/fixtures/fuzz/<target>/`; a new finding is added
//! there with the fix that makes it pass.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn segment_log_findings_stay_fixed() {
    for (path, input) in inputs("segment_log") {
        eprintln!("{}", path.display());
        pyroscope_relay::fuzzing::segment_log_recovery(&input);
    }
}
