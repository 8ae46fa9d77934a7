//! The push path: `push.v1.PusherService/Push` as a Connect unary call.
//!
//! All series of one incoming request go to each endpoint in ONE
//! `PushRequest` (Alloy sends one request per series). Series whose label
//! sets are identical after the rewrite are merged into one series with
//! their samples in arrival order: the server treats each sample as its own
//! profile either way, and the request gets smaller. If any series has
//! invalid labels, nothing is sent and the append fails with
//! `invalid_argument`.

use std::collections::HashMap;

use bytes::Bytes;

use super::labels;
use super::outgoing::{Request, Target};
use crate::codec::push_encode::{SeriesRef, encode_push_request};
use crate::pipeline::{AppendError, Profile, Series};

/// The downstream request for a push, or `None` when it carries no series.
pub(super) fn request(
    series: &[Series],
    external: &[(String, String)],
    profile: &Profile,
) -> Result<Option<Request>, AppendError> {
    let body = encode(series, external)?;
    if series.is_empty() {
        return Ok(None);
    }
    Ok(Some(Request {
        target: Target::Push,
        forwarded: profile.forwarded_headers.clone(),
        body,
        profiles: profile.profile_count(),
        bytes: profile.byte_count(),
    }))
}

/// Up to this many distinct label sets, equal ones are found by a linear
/// scan (a push usually carries a handful of series); beyond, by a hash
/// index, so a request with thousands of series stays linear.
const LINEAR_MERGE_MAX: usize = 16;

/// Validates every series, rewrites its labels, merges equal label sets
/// and encodes the `PushRequest`.
pub(super) fn encode(
    series: &[Series],
    external: &[(String, String)],
) -> Result<Bytes, AppendError> {
    let mut merged: Vec<SeriesRef<'_>> = Vec::with_capacity(series.len());
    let mut index: Option<HashMap<Vec<(&str, &str)>, usize>> = None;
    for s in series {
        labels::validate(&s.labels)?;
        let rewritten = labels::for_push(&s.labels, external);
        if merged.len() == LINEAR_MERGE_MAX && index.is_none() {
            let built = merged
                .iter()
                .enumerate()
                .map(|(i, m)| (m.labels.clone(), i));
            index = Some(built.collect());
        }
        let found = match &index {
            Some(index) => index.get(&rewritten).copied(),
            None => merged.iter().position(|m| m.labels == rewritten),
        };
        match found {
            Some(i) => merged[i].samples.extend(&s.samples),
            None => {
                if let Some(index) = &mut index {
                    index.insert(rewritten.clone(), merged.len());
                }
                merged.push(SeriesRef {
                    labels: rewritten,
                    samples: s.samples.iter().collect(),
                });
            }
        }
    }
    Ok(encode_push_request(&merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::proto::PushRequest;
    use crate::pipeline::{Labels, Sample};
    use prost::Message;

    fn series(pairs: &[(&str, &str)], ids: &[&str]) -> Series {
        Series {
            labels: Labels::from_pairs_unsorted(pairs.iter().copied()),
            samples: ids
                .iter()
                .map(|id| Sample {
                    id: (*id).to_owned(),
                    raw_profile: Bytes::from_static(b"pprofraw"),
                })
                .collect(),
        }
    }

    #[test]
    fn merges_equal_label_sets_after_rewrite() {
        let external = vec![("env".to_owned(), "prod".to_owned())];
        let input = [
            series(&[("__name__", "a"), ("env", "dev")], &["1"]),
            series(&[("__name__", "b")], &["2"]),
            series(&[("__name__", "a"), ("__type__", "x")], &["3", "4"]),
        ];
        let req = PushRequest::decode(encode(&input, &external).unwrap()).unwrap();
        assert_eq!(req.series.len(), 2);
        let ids: Vec<_> = req.series[0]
            .samples
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["1", "3", "4"]);
        let names: Vec<_> = req.series[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(names, [("__name__", "a"), ("env", "prod")]);
        assert_eq!(req.series[1].samples[0].id, "2");
    }

    #[test]
    fn many_distinct_label_sets_merge_the_same_way() {
        let names: Vec<String> = (0..LINEAR_MERGE_MAX * 2).map(|i| format!("s{i}")).collect();
        let ids: Vec<String> = (0..names.len() * 2).map(|i| i.to_string()).collect();
        // Every label set twice: s0 s1 ... s31 s0 s1 ... s31.
        let input: Vec<Series> = (0..names.len() * 2)
            .map(|i| series(&[("__name__", &names[i % names.len()])], &[&ids[i]]))
            .collect();
        let req = PushRequest::decode(encode(&input, &[]).unwrap()).unwrap();
        assert_eq!(req.series.len(), names.len());
        for (i, s) in req.series.iter().enumerate() {
            assert_eq!(s.labels[0].value, names[i]);
            let got: Vec<_> = s.samples.iter().map(|x| x.id.clone()).collect();
            assert_eq!(got, [ids[i].clone(), ids[i + names.len()].clone()]);
        }
    }

    #[test]
    fn one_invalid_series_rejects_the_request() {
        let input = [
            series(&[("__name__", "a")], &["1"]),
            series(&[("bad-name", "x")], &["2"]),
        ];
        let err = encode(&input, &[]).unwrap_err();
        assert_eq!(
            err.message,
            "invalid labels in profile: invalid label name: bad-name"
        );
    }
}
