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
    check(labels).map_err(|reason| {
        AppendError::invalid_argument(format!("invalid labels in profile: {reason}"))
    })
}

fn check(labels: &Labels) -> Result<(), String> {
    if labels.is_empty() {
        return Err("service name is required".to_owned());
    }
    let mut previous: Option<&str> = None;
    for label in labels.iter() {
        if previous == Some(label.name.as_str()) {
            return Err(format!("duplicate label name: {}", label.name));
        }
        if label.name != NAME && !is_valid_label_name(&label.name) {
            return Err(format!("invalid label name: {}", label.name));
        }
        previous = Some(&label.name);
    }
    Ok(())
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
        match out.binary_search_by(|(n, _)| (*n).cmp(name.as_str())) {
            Ok(i) if value.is_empty() => {
                out.remove(i);
            }
            Ok(i) => out[i].1 = value,
            Err(_) if value.is_empty() => {}
            Err(i) => out.insert(i, (name, value)),
        }
    }
    out
}

/// The ingest path's rewrite before validation: `__name__ := service_name`
/// when `service_name` is set.
pub fn service_name_as_name(labels: &Labels) -> Labels {
    let mut out = labels.clone();
    if let Some(service) = labels.get(SERVICE_NAME).filter(|s| !s.is_empty()) {
        out.set(NAME, service.to_owned());
    }
    out
}

/// The ingest path's merge after validation: external labels override and
/// an empty value deletes (labelset `Add`).
pub fn with_external(mut labels: Labels, external: &[(String, String)]) -> Labels {
    for (name, value) in external {
        labels.set(name.as_str(), value.as_str());
    }
    labels
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
        let named = service_name_as_name(&input);
        assert_eq!(named.get("__name__"), Some("my-service"));
        let unchanged = service_name_as_name(&Labels::from_pairs([("__name__", "x")]));
        assert_eq!(unchanged.get("__name__"), Some("x"));
        let merged = with_external(
            Labels::from_pairs([("__name__", "a"), ("env", "staging"), ("drop", "me")]),
            &[
                ("env".into(), "prod".into()),
                ("drop".into(), String::new()),
            ],
        );
        assert_eq!(merged.get("env"), Some("prod"));
        assert_eq!(merged.get("drop"), None);
    }
}
