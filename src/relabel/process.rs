//! Running rules over a label set, with Prometheus's semantics
//! (`relabel.ProcessBuilder`).

use md5::{Digest, Md5};

use super::rule::{Action, Rule, is_valid_label_name};
use super::template::expand;
use crate::pipeline::{Label, Labels};

/// Applies `rules` in order. `None` means a keep/drop rule dropped the set;
/// `Some` may be empty when every label was removed.
pub fn apply(rules: &[Rule], labels: &Labels) -> Option<Labels> {
    run(rules, labels).ok()
}

/// The index of the rule that drops `labels`, if one does (for the live
/// tap, which asks only about a label set it saw dropped).
pub fn dropping_rule(rules: &[Rule], labels: &Labels) -> Option<usize> {
    run(rules, labels).err()
}

/// The relabeled set, or the index of the rule that dropped it.
fn run(rules: &[Rule], labels: &Labels) -> Result<Labels, usize> {
    let mut builder = Builder::new(labels);
    for (i, rule) in rules.iter().enumerate() {
        if !step(rule, &mut builder) {
            return Err(i);
        }
    }
    Ok(builder.finish())
}

/// One rule; `false` drops the label set.
fn step(rule: &Rule, lb: &mut Builder<'_>) -> bool {
    match rule.action {
        Action::Drop => !rule.regex.is_match(&source_value(rule, lb)),
        Action::Keep => rule.regex.is_match(&source_value(rule, lb)),
        Action::DropEqual => lb.get(&rule.target_label) != source_value(rule, lb),
        Action::KeepEqual => lb.get(&rule.target_label) == source_value(rule, lb),
        Action::Replace => {
            let value = source_value(rule, lb);
            replace(rule, lb, &value);
            true
        }
        Action::Lowercase => {
            let value = map_chars(&source_value(rule, lb), lower);
            lb.set(&rule.target_label, value);
            true
        }
        Action::Uppercase => {
            let value = map_chars(&source_value(rule, lb), upper);
            lb.set(&rule.target_label, value);
            true
        }
        Action::HashMod => {
            let shard = hash_mod(&source_value(rule, lb), rule.modulus);
            lb.set(&rule.target_label, shard.to_string());
            true
        }
        Action::LabelMap => {
            label_map(rule, lb);
            true
        }
        Action::LabelDrop => {
            lb.retain_names(|name| !rule.regex.is_match(name));
            true
        }
        Action::LabelKeep => {
            lb.retain_names(|name| rule.regex.is_match(name));
            true
        }
    }
}

/// The source labels' values joined by the separator; a missing label
/// counts as the empty string.
fn source_value(rule: &Rule, lb: &Builder<'_>) -> String {
    let mut value = String::new();
    for (i, name) in rule.source_labels.iter().enumerate() {
        if i > 0 {
            value.push_str(&rule.separator);
        }
        value.push_str(lb.get(name));
    }
    value
}

/// Writes the expanded replacement to the expanded target when the regex
/// matches. A target that is not a label name after expansion is skipped;
/// an empty result deletes the target.
fn replace(rule: &Rule, lb: &mut Builder<'_>, value: &str) {
    let Some(caps) = rule.regex.captures(value) else {
        return;
    };
    let target = if rule.target_is_template {
        let mut t = String::new();
        expand(&mut t, &rule.target_label, &caps);
        t
    } else {
        rule.target_label.clone()
    };
    if !is_valid_label_name(&target) {
        return;
    }
    let mut result = String::new();
    expand(&mut result, &rule.replacement, &caps);
    lb.set(&target, result);
}

/// Copies each label whose name matches to the expanded replacement name.
/// The regex is anchored, so Go's replace-all is one whole-name match.
fn label_map(rule: &Rule, lb: &mut Builder<'_>) {
    for label in lb.snapshot() {
        if let Some(caps) = rule.regex.captures(&label.name) {
            let mut name = String::new();
            expand(&mut name, &rule.replacement, &caps);
            lb.set(&name, label.value);
        }
    }
}

/// Prometheus's shard number: MD5 of the value, its last 8 bytes read as a
/// big-endian integer, modulo `modulus` (never 0 after validation).
pub(super) fn hash_mod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(tail) % modulus
}

/// Go's `strings.ToLower`/`ToUpper` map each character on its own (simple
/// case mapping): no final-sigma rule and no expansion such as ß → SS.
fn map_chars(value: &str, f: fn(char) -> char) -> String {
    value.chars().map(f).collect()
}

fn lower(c: char) -> char {
    // Only U+0130 lowers to two characters; its simple mapping is the first.
    c.to_lowercase().next().unwrap_or(c)
}

fn upper(c: char) -> char {
    let mut mapped = c.to_uppercase();
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        // Expanding mappings (ß, ŉ, ligatures) have no simple uppercase.
        _ => c,
    }
}

/// Prometheus's `labels.Builder`: changes are kept apart from the input so
/// that labelmap/labeldrop/labelkeep visit the labels in Prometheus's order
/// (untouched input labels first, then labels set by earlier rules in the
/// order they were first set), which decides who wins when labelmap maps two
/// names to one.
struct Builder<'a> {
    base: &'a Labels,
    deleted: Vec<String>,
    added: Vec<Label>,
}

impl<'a> Builder<'a> {
    fn new(base: &'a Labels) -> Self {
        Self {
            base,
            deleted: Vec::new(),
            added: Vec::new(),
        }
    }

    fn get(&self, name: &str) -> &str {
        if let Some(l) = self.added.iter().find(|l| l.name == name) {
            return &l.value;
        }
        if self.deleted.iter().any(|d| d == name) {
            return "";
        }
        self.base.get(name).unwrap_or("")
    }

    /// Sets a label; an empty value deletes it.
    fn set(&mut self, name: &str, value: String) {
        if value.is_empty() {
            self.delete(name);
        } else if let Some(l) = self.added.iter_mut().find(|l| l.name == name) {
            l.value = value;
        } else {
            self.added.push(Label {
                name: name.to_owned(),
                value,
            });
        }
    }

    fn delete(&mut self, name: &str) {
        self.added.retain(|l| l.name != name);
        if !self.deleted.iter().any(|d| d == name) {
            self.deleted.push(name.to_owned());
        }
    }

    fn retain_names(&mut self, keep: impl Fn(&str) -> bool) {
        for label in self.snapshot() {
            if !keep(&label.name) {
                self.delete(&label.name);
            }
        }
    }

    fn is_untouched(&self, name: &str) -> bool {
        !self.deleted.iter().any(|d| d == name) && !self.added.iter().any(|a| a.name == name)
    }

    /// The current labels, in visiting order.
    fn snapshot(&self) -> Vec<Label> {
        self.base
            .iter()
            .filter(|l| self.is_untouched(&l.name))
            .chain(self.added.iter())
            .cloned()
            .collect()
    }

    fn finish(self) -> Labels {
        if self.deleted.is_empty() && self.added.is_empty() {
            return self.base.clone();
        }
        // Sorts stably and keeps the input's own labels as they were.
        Labels::from_pairs_unsorted(self.snapshot().into_iter().map(|l| (l.name, l.value)))
    }
}
