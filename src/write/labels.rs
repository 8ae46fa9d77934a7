//! Label checks and rewrites shared by the push and ingest paths
//! (Alloy's `validateLabels`; differences in docs/compatibility.md).

use crate::codec::labelset::is_valid_label_name;
use crate::pipeline::{AppendError, Labels};

pub const NAME: &str = "__name__";
pub const DELTA: &str = "__delta__";
pub const SERVICE_NAME: &str = "service_name";

/// Checks a label set as Alloy's writer does, in sorted order: not empty,
/// no duplicate names, and every name other than `__name__` made of
/// `[A-Za-z0-9_.]`. Alloy also rejects values that are not UTF-8; a
/// [`Labels`] holds `String`s, so receivers already refused those when
/// decoding.
pub fn validate(labels: &Labels) -> Result<(), AppendError> {
    check(labels.iter().map(|l| l.name.as_str())).map_err(invalid)
}

fn invalid(reason: String) -> AppendError {
    AppendError::invalid_argument(format!("invalid labels in profile: {reason}"))
}

/// `names` in sorted order.
fn check<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut previous: Option<&str> = None;
    for name in names {
        if previous == Some(name) {
            return Err(format!("duplicate label name: {name}"));
        }
        if name != NAME && !is_valid_label_name(name) {
            return Err(format!("invalid label name: {name}"));
        }
        previous = Some(name);
    }
    match previous {
        None => Err("service name is required".to_owned()),
        Some(_) => Ok(()),
    }
}

/// The push path's rewrite: drops `__*` labels other than `__name__` and
/// `__delta__`, then applies `external` (which override; an empty value
/// deletes, as Prometheus' `labels.Builder` does). The result is sorted by
/// name and borrows from both inputs; `labels` must be validated (no
/// duplicate names).
pub fn for_push<'a>(
    labels: &'a Labels,
    external: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = labels
        .iter()
        .filter(|l| !l.name.starts_with("__") || l.name == NAME || l.name == DELTA)
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    for (name, value) in external {
        set(&mut out, name, value);
    }
    out
}

/// The ingest path's label set, borrowed from both inputs and sorted by
/// name: `__name__ := service_name` when `service_name` is set, then
/// validated, then `external` applied (they override and an empty value
/// deletes, labelset `Add`).
pub fn for_ingest<'a>(
    labels: &'a Labels,
    external: &'a [(String, String)],
) -> Result<Vec<(&'a str, &'a str)>, AppendError> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + external.len() + 1);
    out.extend(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    if let Some(service) = labels.get(SERVICE_NAME).filter(|s| !s.is_empty()) {
        set(&mut out, NAME, service);
    }
    check(out.iter().map(|(name, _)| *name)).map_err(invalid)?;
    for (name, value) in external {
        set(&mut out, name, value);
    }
    Ok(out)
}

/// [`Labels::set`] on borrowed pairs: the same search, so the same label
/// of a set with duplicates is the one replaced.
fn set<'a>(pairs: &mut Vec<(&'a str, &'a str)>, name: &'a str, value: &'a str) {
    match pairs.binary_search_by(|(n, _)| (*n).cmp(name)) {
        Ok(i) if value.is_empty() => {
            pairs.remove(i);
        }
        Ok(i) => pairs[i].1 = value,
        Err(_) if value.is_empty() => {}
        Err(i) => pairs.insert(i, (name, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs_unsorted(pairs.iter().copied())
    }

    fn message(labels: &Labels) -> String {
        validate(labels).unwrap_err().message
    }

    // Test_Write_FanOut_ValidateLabels and TestInvalidLabels, adapted.
    #[test]
    fn validation_messages() {
        assert!(
            validate(&raw(&[
                ("__name__", "cpu"),
                ("service_name", "a"),
                ("x.y_z", "")
            ]))
            .is_ok()
        );
        assert_eq!(
            message(&raw(&[])),
            "invalid labels in profile: service name is required"
        );
        assert_eq!(
            message(&raw(&[("__name__", "a"), ("foo", "1"), ("foo", "2")])),
            "invalid labels in profile: duplicate label name: foo"
        );
        assert_eq!(
            message(&raw(&[("__name__", "a"), ("__name__", "b")])),
            "invalid labels in profile: duplicate label name: __name__"
        );
        assert_eq!(
            message(&raw(&[("__name__", "a"), ("invalid-label-name", "x")])),
            "invalid labels in profile: invalid label name: invalid-label-name"
        );
        assert_eq!(
            message(&raw(&[("", "x")])),
            "invalid labels in profile: invalid label name: "
        );
        let err = validate(&raw(&[("bad-name", "x")])).unwrap_err();
        assert_eq!(err.code, crate::codec::Code::InvalidArgument);
        assert_eq!(err.http_status, None);
    }

    #[test]
    fn push_rewrite_drops_reserved_and_applies_external() {
        let input = raw(&[
            ("__name__", "test"),
            ("__type__", "type"),
            ("job", "foo"),
            ("foo", "bar"),
            ("__delta__", "false"),
        ]);
        let external = vec![("foo".to_owned(), "buzz".to_owned())];
        let got = for_push(&input, &external);
        assert_eq!(
            got,
            [
                ("__delta__", "false"),
                ("__name__", "test"),
                ("foo", "buzz"),
                ("job", "foo")
            ]
        );
        let external = [
            ("job".to_owned(), String::new()),
            ("a".to_owned(), "new".to_owned()),
        ];
        let changed = for_push(&input, &external);
        assert_eq!(
            changed,
            [
                ("__delta__", "false"),
                ("__name__", "test"),
                ("a", "new"),
                ("foo", "bar")
            ]
        );
    }

    #[test]
    fn ingest_rewrites() {
        let input = Labels::from_pairs([
            ("__name__", "original-name"),
            ("service_name", "my-service"),
        ]);
        assert_eq!(
            for_ingest(&input, &[]).unwrap(),
            [("__name__", "my-service"), ("service_name", "my-service")]
        );
        let unchanged = Labels::from_pairs([("__name__", "x")]);
        assert_eq!(for_ingest(&unchanged, &[]).unwrap(), [("__name__", "x")]);
        let external = [
            ("env".to_owned(), "prod".to_owned()),
            ("drop".to_owned(), String::new()),
            ("added".to_owned(), "1".to_owned()),
        ];
        let input = Labels::from_pairs([("__name__", "a"), ("env", "staging"), ("drop", "me")]);
        assert_eq!(
            for_ingest(&input, &external).unwrap(),
            [("__name__", "a"), ("added", "1"), ("env", "prod")]
        );
        // Validated before the external labels, as Alloy does.
        let bad = raw(&[("__name__", "a"), ("bad-name", "1")]);
        let err = for_ingest(&bad, &external).unwrap_err().message;
        assert_eq!(
            err,
            "invalid labels in profile: invalid label name: bad-name"
        );
        let duplicated = raw(&[("__name__", "a"), ("__name__", "b"), ("service_name", "s")]);
        let err = for_ingest(&duplicated, &[]).unwrap_err().message;
        assert_eq!(
            err,
            "invalid labels in profile: duplicate label name: __name__"
        );
        assert!(for_ingest(&Labels::new(), &[]).is_err());
    }
}
