//! Each action's semantics, through `Rule::compile` and `apply`.

use super::{ls, rule, strings};
use crate::pipeline::Labels;
use crate::relabel::{Rule, RuleConfig, apply};

fn run(rules: Vec<RuleConfig>, input: &Labels) -> Option<Labels> {
    apply(&Rule::compile_all(&rules).unwrap(), input)
}

fn replace(sources: &[&str], regex: &str, target: &str, replacement: &str) -> RuleConfig {
    RuleConfig {
        source_labels: strings(sources),
        regex: regex.to_owned(),
        target_label: target.to_owned(),
        replacement: replacement.to_owned(),
        ..rule("replace")
    }
}

fn hashmod(sources: &[&str], modulus: u64) -> RuleConfig {
    RuleConfig {
        source_labels: strings(sources),
        target_label: "shard".to_owned(),
        modulus,
        ..rule("hashmod")
    }
}

fn regex_only(action: &str, regex: &str) -> RuleConfig {
    RuleConfig {
        regex: regex.to_owned(),
        ..rule(action)
    }
}

fn with_sources(action: &str, sources: &[&str], regex: &str) -> RuleConfig {
    RuleConfig {
        source_labels: strings(sources),
        regex: regex.to_owned(),
        ..rule(action)
    }
}

#[test]
fn no_rules_leave_labels_unchanged() {
    let input = ls(&[("a", "1")]);
    assert_eq!(run(vec![], &input), Some(input));
}

#[test]
fn replace_joins_sources_with_separator() {
    let mut r = replace(&["a", "b"], "(.*);(.*)", "c", "$2-$1");
    let input = ls(&[("a", "x"), ("b", "y")]);
    assert_eq!(
        run(vec![r.clone()], &input),
        Some(ls(&[("a", "x"), ("b", "y"), ("c", "y-x")]))
    );
    r.separator = "/".to_owned();
    r.regex = "(.*)/(.*)".to_owned();
    assert_eq!(run(vec![r], &input).unwrap().get("c"), Some("y-x"));
}

#[test]
fn replace_treats_missing_sources_as_empty() {
    // "a;" : the missing b joins as the empty string.
    let r = replace(&["a", "b"], "x;", "c", "matched");
    let out = run(vec![r], &ls(&[("a", "x")])).unwrap();
    assert_eq!(out.get("c"), Some("matched"));
    // No sources at all: the value is "", which the default regex matches.
    let r = replace(&[], "(.*)", "static", "value");
    assert_eq!(
        run(vec![r], &Labels::new()),
        Some(ls(&[("static", "value")]))
    );
}

#[test]
fn replace_regex_is_fully_anchored_and_dot_matches_newline() {
    let r = replace(&["a"], "oo", "b", "hit");
    let input = ls(&[("a", "foo")]);
    assert_eq!(
        run(vec![r], &input),
        Some(input),
        "partial match is no match"
    );
    let r = replace(&["a"], "foo.bar", "b", "hit");
    let out = run(vec![r], &ls(&[("a", "foo\nbar")])).unwrap();
    assert_eq!(out.get("b"), Some("hit"));
}

#[test]
fn replace_with_empty_result_deletes_target() {
    // The regex matches the empty value; $1 is empty, so b is deleted.
    let r = replace(&["missing"], "(.*)", "b", "$1");
    assert_eq!(
        run(vec![r], &ls(&[("a", "1"), ("b", "2")])),
        Some(ls(&[("a", "1")]))
    );
    // Prometheus's own case: target "$1" = "f", replacement $2 (absent) = "".
    let r = replace(&["a"], "(f).*", "$1", "$2");
    let input = ls(&[("a", "foo")]);
    assert_eq!(run(vec![r], &input), Some(input));
}

#[test]
fn replace_expands_target_and_skips_invalid_targets() {
    let r = replace(&["a"], "(\\w+)=(\\w+)", "${1}_key", "$2");
    let out = run(vec![r.clone()], &ls(&[("a", "team=core")])).unwrap();
    assert_eq!(out.get("team_key"), Some("core"));
    // "1x_key" starts with a digit: not a label name, so nothing is written.
    let input = ls(&[("a", "1x=core")]);
    assert_eq!(run(vec![r], &input), Some(input));
    // An expansion to the empty name is skipped too.
    let r = replace(&["a"], "(x?)(.*)", "$1", "v");
    let input = ls(&[("a", "abc")]);
    assert_eq!(run(vec![r], &input), Some(input));
}

#[test]
fn replace_templates_follow_go_expand() {
    let input = ls(&[("a", "foo-bar")]);
    let cases = [
        ("${1}x", "foox"),
        ("$1x", ""), // group "1x" does not exist
        ("$2", "bar"),
        ("${first}/$second", "foo/bar"),
        ("$$1", "$1"),
        ("$-$", "$-$"),
        ("${a-b}", "${a-b}"),
        ("${1", "${1"),
        ("$01", ""), // the group named "01", not group 1
        ("$9", ""),
        ("$0", "foo-bar"),
        ("pre_$1é", "pre_"), // Go reads the name "1é"
    ];
    for (replacement, want) in cases {
        let r = replace(
            &["a"],
            "(?P<first>[a-z]+)-(?<second>[a-z]+)",
            "out",
            replacement,
        );
        let out = run(vec![r], &input).unwrap();
        assert_eq!(
            out.get("out").unwrap_or(""),
            want,
            "replacement {replacement:?}"
        );
    }
}

#[test]
fn keep_and_drop_match_the_joined_value() {
    let keep = with_sources("keep", &["env"], "prod");
    assert!(run(vec![keep.clone()], &ls(&[("env", "prod")])).is_some());
    assert_eq!(run(vec![keep.clone()], &ls(&[("env", "production")])), None);
    assert_eq!(
        run(vec![keep], &ls(&[("region", "eu")])),
        None,
        "missing = \"\""
    );
    let keep_empty = with_sources("keep", &["env"], "");
    assert!(run(vec![keep_empty], &ls(&[("region", "eu")])).is_some());

    let drop = with_sources("drop", &["env", "region"], "dev;.*");
    assert_eq!(
        run(vec![drop.clone()], &ls(&[("env", "dev"), ("region", "eu")])),
        None
    );
    assert!(run(vec![drop], &ls(&[("env", "prod"), ("region", "eu")])).is_some());
}

#[test]
fn drop_stops_later_rules() {
    let rules = vec![
        with_sources("drop", &["env"], "dev"),
        replace(&[], "(.*)", "never", "set"),
    ];
    assert_eq!(run(rules, &ls(&[("env", "dev")])), None);
}

#[test]
fn hashmod_matches_prometheus_values() {
    // md5("baz") = …e99611fbacea63b2… ; Prometheus's own test expects 976.
    let out = run(vec![hashmod(&["c"], 1000)], &ls(&[("c", "baz")])).unwrap();
    assert_eq!(out.get("shard"), Some("976"));
    let out = run(vec![hashmod(&["a"], 1000)], &ls(&[("a", "foo\nbar")])).unwrap();
    assert_eq!(out.get("shard"), Some("734"));
    // md5("prod;us-1") low 8 bytes = 0x038468f5430a3541 = 253442881640609089.
    let input = ls(&[("env", "prod"), ("region", "us-1")]);
    let out = run(vec![hashmod(&["env", "region"], 10)], &input).unwrap();
    assert_eq!(out.get("shard"), Some("9"));
    let out = run(vec![hashmod(&["env"], u64::MAX)], &input).unwrap();
    assert_eq!(out.get("shard"), Some("5240684586149663223"));
    // A missing source hashes the empty string (d41d8cd9…ecf8427e).
    let out = run(vec![hashmod(&["nope"], 1000)], &input).unwrap();
    assert_eq!(out.get("shard"), Some("958"));
}

#[test]
fn labelmap_copies_matching_names() {
    let r = RuleConfig {
        regex: "(b.*)".to_owned(),
        replacement: "bar_${1}".to_owned(),
        ..rule("labelmap")
    };
    let out = run(vec![r], &ls(&[("a", "foo"), ("b1", "bar"), ("b2", "baz")]));
    let want = ls(&[
        ("a", "foo"),
        ("b1", "bar"),
        ("b2", "baz"),
        ("bar_b1", "bar"),
        ("bar_b2", "baz"),
    ]);
    assert_eq!(out, Some(want));
}

#[test]
fn labelmap_collisions_resolve_in_prometheus_order() {
    let map = RuleConfig {
        regex: "foo_.*".to_owned(),
        replacement: "bar".to_owned(),
        ..rule("labelmap")
    };
    let input = ls(&[("foo_a", "1"), ("foo_b", "2")]);
    // Input labels are visited in name order: the last one wins.
    let out = run(vec![map.clone()], &input).unwrap();
    assert_eq!(out.get("bar"), Some("2"));
    // A label set by an earlier rule is visited after untouched ones.
    let set_a = replace(&[], "(.*)", "foo_a", "3");
    let out = run(vec![set_a, map], &input).unwrap();
    assert_eq!(out.get("bar"), Some("3"));
}

#[test]
fn labeldrop_and_labelkeep_match_whole_names() {
    let input = ls(&[("env", "prod"), ("environment", "x"), ("region", "eu")]);
    let out = run(vec![regex_only("labeldrop", "env|region")], &input);
    assert_eq!(out, Some(ls(&[("environment", "x")])));
    let out = run(vec![regex_only("labelkeep", "env|region")], &input);
    assert_eq!(out, Some(ls(&[("env", "prod"), ("region", "eu")])));
    // Labels added by earlier rules are subject to them as well.
    let rules = vec![
        replace(&[], "(.*)", "added", "v"),
        regex_only("labelkeep", "env"),
    ];
    assert_eq!(run(rules, &input), Some(ls(&[("env", "prod")])));
}

#[test]
fn removing_every_label_gives_an_empty_set_not_a_drop() {
    let out = run(
        vec![regex_only("labeldrop", ".*")],
        &ls(&[("a", "1"), ("b", "2")]),
    );
    assert_eq!(out, Some(Labels::new()));
}

#[test]
fn lowercase_and_uppercase_map_each_character() {
    let lower = RuleConfig {
        source_labels: strings(&["a", "b"]),
        target_label: "low".to_owned(),
        ..rule("lowercase")
    };
    let upper = RuleConfig {
        source_labels: strings(&["b"]),
        target_label: "up".to_owned(),
        ..rule("uppercase")
    };
    let input = ls(&[("a", "MiXeD"), ("b", "Straße ÀΣ")]);
    let out = run(vec![lower.clone(), upper.clone()], &input).unwrap();
    // Go's simple case mapping: ß stays ß, a final Σ lowers to σ.
    assert_eq!(out.get("low"), Some("mixed;straße àσ"));
    assert_eq!(out.get("up"), Some("STRAßE ÀΣ"));
    // An empty result deletes the target.
    let out = run(vec![upper], &ls(&[("up", "old")])).unwrap();
    assert_eq!(out.get("up"), None);
}

#[test]
fn keepequal_and_dropequal_compare_with_target() {
    let keep = RuleConfig {
        source_labels: strings(&["a"]),
        target_label: "b".to_owned(),
        ..rule("keepequal")
    };
    let drop = RuleConfig {
        action: "dropequal".to_owned(),
        ..keep.clone()
    };
    let same = ls(&[("a", "1"), ("b", "1")]);
    let different = ls(&[("a", "1"), ("b", "2")]);
    assert_eq!(run(vec![keep.clone()], &same), Some(same.clone()));
    assert_eq!(run(vec![keep.clone()], &different), None);
    assert_eq!(run(vec![drop.clone()], &same), None);
    assert_eq!(run(vec![drop.clone()], &different), Some(different));
    // Both missing: "" == "".
    assert!(run(vec![keep], &ls(&[("c", "1")])).is_some());
    assert_eq!(run(vec![drop], &ls(&[("c", "1")])), None);
}

#[test]
fn later_rules_see_earlier_changes() {
    let rules = vec![
        replace(&["env"], "(.*)", "environment", "$1"),
        regex_only("labeldrop", "env"),
        with_sources("keep", &["environment"], "prod"),
        replace(&["environment"], "p(.*)", "short", "$1"),
    ];
    let out = run(rules, &ls(&[("env", "prod")]));
    assert_eq!(out, Some(ls(&[("environment", "prod"), ("short", "rod")])));
}
