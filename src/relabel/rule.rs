//! Relabel rules: the plain configuration of a `rule` block, its validation
//! (Alloy's `relabel.Config.Validate`, itself Prometheus's) and the compiled
//! form that [`super::apply`] runs.

use regex::Regex;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

/// The default `regex`: the whole joined value, as group 1.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default `separator` between source label values.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default `replacement`: group 1 of `regex`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a rule does. The names are Prometheus's, case-sensitive as in Alloy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
    KeepEqual,
    DropEqual,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
        Action::KeepEqual,
        Action::DropEqual,
    ];

    /// The name used in configuration (`"hashmod"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
        }
    }

    /// Actions that write `target_label` and so need one.
    fn needs_target(self) -> bool {
        matches!(
            self,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        )
    }

    /// Actions whose `target_label` is used literally, so it must be a label
    /// name (replace's may hold `$1` references instead).
    fn needs_literal_target(self) -> bool {
        matches!(
            self,
            Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(RuleError::EmptyAction);
        }
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| RuleError::UnknownAction(s.to_owned()))
    }
}

/// One `rule` block as configured, before validation. `Default` gives
/// Alloy's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    /// Unanchored; compiled as `^(?s:REGEX)$`.
    pub regex: String,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: String,
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            regex: DEFAULT_REGEX.to_owned(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action: Action::Replace.as_str().to_owned(),
        }
    }
}

/// Why a rule was rejected. The messages start as Alloy's do and add what
/// the user needs to fix them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("relabel action cannot be empty")]
    EmptyAction,
    #[error("unrecognized action type {0:?}{hint}", hint = action_hint(.0))]
    UnknownAction(String),
    #[error("invalid regex {regex:?}: {message}")]
    InvalidRegex { regex: String, message: String },
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error(
        "{target:?} is invalid 'target_label' for {action} action: {}",
        target_hint(.action)
    )]
    InvalidTargetLabel { target: String, action: Action },
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{replacement:?} is invalid 'replacement' for {action} action: {TEMPLATE_HINT}")]
    InvalidReplacement { replacement: String, action: Action },
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegexAllowed(Action),
    #[error("{0} action requires only 'source_labels' and 'target_label', and no other fields")]
    OnlySourceAndTargetAllowed(Action),
    /// An error in the `index`th (0-based) rule of a list.
    #[error("rule {} of pyroscope.relabel: {error}", .index + 1)]
    InRule { index: usize, error: Box<RuleError> },
}

const NAME_HINT: &str = "a label name must match [a-zA-Z_][a-zA-Z0-9_]*";
const TEMPLATE_HINT: &str =
    "it must be a label name ([a-zA-Z_][a-zA-Z0-9_]*) that may contain $1 or ${name} references";

fn target_hint(action: &Action) -> &'static str {
    match action {
        Action::Replace => TEMPLATE_HINT,
        _ => NAME_HINT,
    }
}

fn action_hint(given: &str) -> String {
    let lower = given.to_ascii_lowercase();
    match Action::ALL.into_iter().find(|a| a.as_str() == lower) {
        Some(a) => format!(" (did you mean {:?}?)", a.as_str()),
        None => {
            let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
            format!(" (valid actions: {})", names.join(", "))
        }
    }
}

/// Prometheus's legacy label-name rule, which Alloy applies.
pub(super) fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A label name that may contain `$1`, `$name` or `${name}` references
/// (Prometheus's `relabelTarget`; `\w` is ASCII in Go).
fn is_valid_label_template(s: &str) -> bool {
    static TEMPLATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
            .expect("static pattern compiles")
    });
    TEMPLATE.is_match(s)
}

/// A validated, compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(super) action: Action,
    pub(super) source_labels: Vec<String>,
    pub(super) separator: String,
    /// Anchored: `^(?s:…)$`.
    pub(super) regex: Regex,
    pub(super) modulus: u64,
    pub(super) target_label: String,
    /// Whether `target_label` holds `$` references to expand.
    pub(super) target_is_template: bool,
    pub(super) replacement: String,
}

impl Rule {
    /// Parses and validates `config` as Alloy does when it decodes a `rule`
    /// block: action, then regex, then the cross-field checks.
    pub fn compile(config: &RuleConfig) -> Result<Rule, RuleError> {
        let action: Action = config.action.parse()?;
        let regex = compile_regex(&config.regex)?;
        validate(config, action)?;
        Ok(Rule {
            action,
            source_labels: config.source_labels.clone(),
            separator: config.separator.clone(),
            regex,
            modulus: config.modulus,
            target_label: config.target_label.clone(),
            target_is_template: config.target_label.contains('$'),
            replacement: config.replacement.clone(),
        })
    }

    /// Compiles a list of rules; an error names the rule (1-based).
    pub fn compile_all(configs: &[RuleConfig]) -> Result<Vec<Rule>, RuleError> {
        configs
            .iter()
            .enumerate()
            .map(|(index, c)| {
                Rule::compile(c).map_err(|e| RuleError::InRule {
                    index,
                    error: Box::new(e),
                })
            })
            .collect()
    }

    pub fn action(&self) -> Action {
        self.action
    }
}

fn compile_regex(pattern: &str) -> Result<Regex, RuleError> {
    Regex::new(&format!("^(?s:{pattern})$")).map_err(|anchored| {
        // Report positions in the user's own pattern when it fails alone too.
        let message = match Regex::new(pattern) {
            Err(own) => own.to_string(),
            Ok(_) => anchored.to_string(),
        };
        RuleError::InvalidRegex {
            regex: pattern.to_owned(),
            message,
        }
    })
}

/// Alloy's `Config.Validate`, in its order. Deliberately stricter in one
/// place: lowercase/uppercase/keepequal/dropequal targets must be plain label
/// names (Alloy accepts `$1` there and then writes it literally).
fn validate(c: &RuleConfig, action: Action) -> Result<(), RuleError> {
    if action == Action::HashMod && c.modulus == 0 {
        return Err(RuleError::ZeroModulus);
    }
    if action.needs_target() && c.target_label.is_empty() {
        return Err(RuleError::MissingTargetLabel(action));
    }
    let target_ok = match action {
        Action::Replace => is_valid_label_template(&c.target_label),
        a if a.needs_literal_target() => is_valid_label_name(&c.target_label),
        _ => true,
    };
    if !target_ok {
        return Err(RuleError::InvalidTargetLabel {
            target: c.target_label.clone(),
            action,
        });
    }
    let writes_value = matches!(
        action,
        Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
    );
    if writes_value && c.replacement != DEFAULT_REPLACEMENT {
        return Err(RuleError::ReplacementNotAllowed(action));
    }
    if action == Action::LabelMap && !is_valid_label_template(&c.replacement) {
        return Err(RuleError::InvalidReplacement {
            replacement: c.replacement.clone(),
            action,
        });
    }
    let defaults = RuleConfig::default();
    if matches!(action, Action::LabelDrop | Action::LabelKeep)
        && (!c.source_labels.is_empty()
            || c.target_label != defaults.target_label
            || c.modulus != defaults.modulus
            || c.separator != defaults.separator
            || c.replacement != defaults.replacement)
    {
        return Err(RuleError::OnlyRegexAllowed(action));
    }
    if matches!(action, Action::KeepEqual | Action::DropEqual)
        && (c.regex != defaults.regex
            || c.modulus != defaults.modulus
            || c.separator != defaults.separator
            || c.replacement != defaults.replacement)
    {
        return Err(RuleError::OnlySourceAndTargetAllowed(action));
    }
    Ok(())
}
