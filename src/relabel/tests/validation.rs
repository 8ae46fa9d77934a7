//! Rule validation: every rejection, with its message.

use super::{rule, strings};
use crate::relabel::{Action, Rule, RuleConfig, RuleError};

fn error(config: RuleConfig) -> RuleError {
    Rule::compile(&config).expect_err("rule should be rejected")
}

fn message(config: RuleConfig) -> String {
    error(config).to_string()
}

fn with_target(action: &str, target: &str) -> RuleConfig {
    RuleConfig {
        target_label: target.to_owned(),
        modulus: u64::from(action == "hashmod"),
        ..rule(action)
    }
}

#[test]
fn defaults_are_alloys() {
    let d = RuleConfig::default();
    assert_eq!(
        (
            d.separator.as_str(),
            d.regex.as_str(),
            d.replacement.as_str()
        ),
        (";", "(.*)", "$1")
    );
    assert_eq!((d.action.as_str(), d.modulus), ("replace", 0));
    assert!(d.source_labels.is_empty() && d.target_label.is_empty());
}

#[test]
fn valid_rules_compile() {
    let ok = [
        with_target("replace", "foo"),
        with_target("replace", "$1"),
        with_target("replace", "${1}"),
        with_target("replace", "pre_${name}_$2post"),
        with_target("hashmod", "__tmp_hash"),
        with_target("lowercase", "low"),
        with_target("uppercase", "UP"),
        with_target("keepequal", "b"),
        with_target("dropequal", "b"),
        rule("keep"),
        rule("drop"),
        rule("labeldrop"),
        rule("labelkeep"),
        rule("labelmap"),
    ];
    for config in ok {
        let compiled = Rule::compile(&config);
        assert!(compiled.is_ok(), "{config:?}: {compiled:?}");
    }
    let action = Rule::compile(&with_target("hashmod", "h"))
        .unwrap()
        .action();
    assert_eq!(action, Action::HashMod);
}

#[test]
fn empty_and_unknown_actions() {
    assert_eq!(message(rule("")), "relabel action cannot be empty");
    assert_eq!(
        message(rule("Replace")),
        r#"unrecognized action type "Replace" (did you mean "replace"?)"#
    );
    assert_eq!(
        message(rule("rename")),
        "unrecognized action type \"rename\" (valid actions: replace, keep, drop, hashmod, \
         labelmap, labeldrop, labelkeep, lowercase, uppercase, keepequal, dropequal)"
    );
}

#[test]
fn invalid_regex_reports_the_users_pattern() {
    let config = RuleConfig {
        regex: "(foo".to_owned(),
        ..rule("keep")
    };
    let RuleError::InvalidRegex { regex, message } = error(config) else {
        panic!("expected InvalidRegex");
    };
    assert_eq!(regex, "(foo");
    assert!(message.contains("unclosed group"), "{message}");
    assert!(
        !message.contains("(?s:"),
        "positions refer to the user's text: {message}"
    );
    let look_around = RuleConfig {
        regex: "(?=x)".to_owned(),
        ..rule("drop")
    };
    assert!(message_starts(look_around, r#"invalid regex "(?=x)": "#));
}

fn message_starts(config: RuleConfig, prefix: &str) -> bool {
    message(config).starts_with(prefix)
}

#[test]
fn regex_is_wrapped_like_prometheus() {
    // `a)(b` only compiles inside `^(?s:…)$`, as in Prometheus.
    let config = RuleConfig {
        source_labels: strings(&["x"]),
        regex: "a)(b".to_owned(),
        ..rule("keep")
    };
    let rule = Rule::compile(&config).unwrap();
    let rules = [rule];
    let keep = |v: &str| crate::relabel::apply(&rules, &super::ls(&[("x", v)])).is_some();
    assert!(keep("ab"));
    assert!(!keep("a"));
}

#[test]
fn hashmod_needs_a_modulus() {
    let config = RuleConfig {
        modulus: 0,
        ..with_target("hashmod", "h")
    };
    assert_eq!(
        message(config),
        "relabel configuration for hashmod requires non-zero modulus"
    );
}

#[test]
fn target_label_is_required() {
    for action in [
        "replace",
        "hashmod",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    ] {
        assert_eq!(
            message(with_target(action, "")),
            format!("relabel configuration for {action} action requires 'target_label' value")
        );
    }
}

#[test]
fn replace_target_must_be_a_label_name_template() {
    for bad in ["foo-bar", "1abc", "$", "${}", "a b", "${1"] {
        assert_eq!(
            message(with_target("replace", bad)),
            format!(
                "{bad:?} is invalid 'target_label' for replace action: it must be a label name \
                 ([a-zA-Z_][a-zA-Z0-9_]*) that may contain $1 or ${{name}} references"
            )
        );
    }
}

#[test]
fn literal_targets_must_be_label_names() {
    for action in [
        "hashmod",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    ] {
        for bad in ["$1", "a.b", "0a"] {
            assert_eq!(
                message(with_target(action, bad)),
                format!(
                    "{bad:?} is invalid 'target_label' for {action} action: a label name must \
                     match [a-zA-Z_][a-zA-Z0-9_]*"
                )
            );
        }
    }
}

#[test]
fn replacement_is_fixed_for_value_copying_actions() {
    for action in ["lowercase", "uppercase", "keepequal", "dropequal"] {
        let config = RuleConfig {
            replacement: "x".to_owned(),
            ..with_target(action, "t")
        };
        assert_eq!(
            message(config),
            format!("'replacement' can not be set for {action} action")
        );
    }
}

#[test]
fn labelmap_replacement_must_be_a_label_name_template() {
    let config = RuleConfig {
        replacement: "bad-name_$1".to_owned(),
        ..rule("labelmap")
    };
    assert_eq!(
        message(config),
        "\"bad-name_$1\" is invalid 'replacement' for labelmap action: it must be a label name \
         ([a-zA-Z_][a-zA-Z0-9_]*) that may contain $1 or ${name} references"
    );
}

#[test]
fn labeldrop_and_labelkeep_take_only_regex() {
    for action in ["labeldrop", "labelkeep"] {
        let base = || RuleConfig {
            regex: "tmp_.*".to_owned(),
            ..rule(action)
        };
        let variants = [
            RuleConfig {
                source_labels: strings(&["a"]),
                ..base()
            },
            RuleConfig {
                target_label: "t".to_owned(),
                ..base()
            },
            RuleConfig {
                modulus: 2,
                ..base()
            },
            RuleConfig {
                separator: ",".to_owned(),
                ..base()
            },
            RuleConfig {
                replacement: "x".to_owned(),
                ..base()
            },
        ];
        for config in variants {
            assert_eq!(
                message(config),
                format!("{action} action requires only 'regex', and no other fields")
            );
        }
    }
}

#[test]
fn keepequal_and_dropequal_take_only_sources_and_target() {
    for action in ["keepequal", "dropequal"] {
        let base = || RuleConfig {
            source_labels: strings(&["a"]),
            ..with_target(action, "b")
        };
        let variants = [
            RuleConfig {
                regex: "x".to_owned(),
                ..base()
            },
            RuleConfig {
                modulus: 2,
                ..base()
            },
            RuleConfig {
                separator: ",".to_owned(),
                ..base()
            },
        ];
        for config in variants {
            assert_eq!(
                message(config),
                format!(
                    "{action} action requires only 'source_labels' and 'target_label', and no \
                     other fields"
                )
            );
        }
    }
}

#[test]
fn compile_all_names_the_failing_rule() {
    let rules = [rule("keep"), with_target("replace", "bad-name")];
    let err = Rule::compile_all(&rules).unwrap_err();
    assert!(
        matches!(&err, RuleError::InRule { index: 1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("rule 2 of pyroscope.relabel: \"bad-name\" is invalid 'target_label'"),
        "{err}"
    );
}
