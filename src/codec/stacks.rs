//! Stack samples out of the two profile formats agents send: pprof
//! (gzipped or not, `proto/google/v1/profile.proto`) and the folded text
//! of `/ingest?format=folded` (`frame;frame;frame count` per line).
//!
//! Used to draw archived profiles as flame graphs; the data path never
//! decodes a profile.

use prost::Message;

use super::compress::{DecompressError, gunzip_limited, is_gzip};
use super::proto::pprof;

/// The most a profile may inflate to before decoding gives up.
pub const DECOMPRESSED_LIMIT: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StacksError {
    #[error("the profile is gzipped but cannot be inflated: {0}")]
    Gzip(#[from] DecompressError),
    #[error("the profile is not a valid pprof message: {0}")]
    Pprof(#[from] prost::DecodeError),
    #[error("the profile is not UTF-8 folded text")]
    NotText,
    #[error("line {line} of the folded profile has no sample count: {text:?}")]
    FoldedLine { line: usize, text: String },
    #[error("unknown sample type {wanted:?}; this profile has: {available}")]
    UnknownSampleType { wanted: String, available: String },
    #[error("the profile has no sample types")]
    NoSampleTypes,
}

/// One kind of value a profile's samples carry, such as `cpu`/`nanoseconds`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SampleType {
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: String,
}

/// Stacks, root frame first, each with its value for one sample type.
/// Frames are indexes into `names`, so a deep profile costs 4 bytes a frame.
#[derive(Debug, Default)]
pub struct Stacks {
    pub sample_types: Vec<SampleType>,
    /// Index into `sample_types` of the values in `stacks`.
    pub selected: usize,
    /// Every frame name once.
    pub names: Vec<String>,
    pub stacks: Vec<(Vec<u32>, i64)>,
}

/// Gives each distinct name one index into a list.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    ids: std::collections::HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }
}

/// Decodes a pprof profile (gzipped or not) and takes the values of
/// `sample_type` (by its type name), or of the profile's default type.
pub fn from_pprof(body: &[u8], sample_type: Option<&str>) -> Result<Stacks, StacksError> {
    let inflated;
    let raw = if is_gzip(body) {
        inflated = gunzip_limited(body, DECOMPRESSED_LIMIT)?;
        &inflated[..]
    } else {
        body
    };
    let profile = pprof::Profile::decode(raw)?;
    let text = |i: i64| -> &str {
        usize::try_from(i)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map_or("", String::as_str)
    };
    let sample_types: Vec<SampleType> = profile
        .sample_type
        .iter()
        .map(|t| SampleType {
            kind: text(t.r#type).to_owned(),
            unit: text(t.unit).to_owned(),
        })
        .collect();
    let selected = choose(
        &sample_types,
        sample_type,
        text(profile.default_sample_type),
    )?;

    let mut names = Interner::default();
    let functions: std::collections::HashMap<u64, u32> = profile
        .function
        .iter()
        .map(|f| (f.id, names.id(text(f.name))))
        .collect();
    let unknown = names.id("?");
    // A location's frames, innermost (inlined) first, as pprof lists them.
    let locations: std::collections::HashMap<u64, Vec<u32>> = profile
        .location
        .iter()
        .map(|l| {
            let frames = l
                .line
                .iter()
                .map(|line| functions.get(&line.function_id).copied().unwrap_or(unknown))
                .collect::<Vec<_>>();
            let frames = if frames.is_empty() {
                vec![unknown]
            } else {
                frames
            };
            (l.id, frames)
        })
        .collect();

    let mut stacks = Vec::with_capacity(profile.sample.len());
    for sample in &profile.sample {
        let value = sample.value.get(selected).copied().unwrap_or(0);
        if value == 0 {
            continue;
        }
        // Samples list the leaf first; a flame graph starts at the root.
        let frames: Vec<u32> = sample
            .location_id
            .iter()
            .rev()
            .flat_map(|id| {
                let frames = locations.get(id).map_or(&[][..], Vec::as_slice);
                frames.iter().rev().copied()
            })
            .collect();
        stacks.push((frames, value));
    }
    Ok(Stacks {
        sample_types,
        selected,
        names: names.names,
        stacks,
    })
}

fn choose(types: &[SampleType], wanted: Option<&str>, default: &str) -> Result<usize, StacksError> {
    if types.is_empty() {
        return Err(StacksError::NoSampleTypes);
    }
    let find = |name: &str| types.iter().position(|t| t.kind == name);
    match wanted.filter(|w| !w.is_empty()) {
        Some(wanted) => find(wanted).ok_or_else(|| StacksError::UnknownSampleType {
            wanted: wanted.to_owned(),
            available: types
                .iter()
                .map(|t| t.kind.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        // pprof's convention: the default type, else the last one.
        None => Ok(find(default).unwrap_or(types.len() - 1)),
    }
}

/// Parses folded stacks; `sample_type` names the one type it has (the
/// profile type from the labels, such as `cpu`).
pub fn from_folded(body: &[u8], sample_type: &str) -> Result<Stacks, StacksError> {
    let text = std::str::from_utf8(body).map_err(|_| StacksError::NotText)?;
    let mut names = Interner::default();
    let mut stacks = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let bad = || StacksError::FoldedLine {
            line: i + 1,
            text: line.chars().take(80).collect(),
        };
        let (stack, count) = line.rsplit_once(' ').ok_or_else(bad)?;
        let value: i64 = count.parse().map_err(|_| bad())?;
        let frames = stack.split(';').map(|f| names.id(f)).collect();
        stacks.push((frames, value));
    }
    Ok(Stacks {
        sample_types: vec![SampleType {
            kind: sample_type.to_owned(),
            unit: "samples".to_owned(),
        }],
        selected: 0,
        names: names.names,
        stacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    #[test]
    fn python_cpu_pprof() {
        let stacks = from_pprof(&fixture("py_cpu.pb"), None).unwrap();
        assert_eq!(stacks.sample_types[stacks.selected].kind, "cpu");
        assert!(!stacks.stacks.is_empty());
        assert!(stacks.stacks.iter().all(|(frames, _)| !frames.is_empty()));
    }

    #[test]
    fn gzipped_node_heap_by_sample_type() {
        let body = fixture("node_heap.pb.gz");
        let space = from_pprof(&body, Some("inuse_space")).unwrap();
        let objects = from_pprof(&body, Some("inuse_objects")).unwrap();
        assert_ne!(space.selected, objects.selected);
        let err = from_pprof(&body, Some("cpu")).unwrap_err();
        assert!(err.to_string().contains("inuse_objects"), "{err}");
    }

    #[test]
    fn folded_text() {
        let stacks = from_folded(&fixture("py_folded.txt"), "cpu").unwrap();
        let (frames, _) = &stacks.stacks[0];
        assert_eq!(
            stacks.names[frames[0] as usize],
            "py_agent.py:61 - <module>"
        );
        assert!(from_folded(b"a;b\n", "cpu").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(from_pprof(b"\x1f\x8b\x08garbage", None).is_err());
        assert!(from_pprof(&[0xff; 64], None).is_err());
    }
}
