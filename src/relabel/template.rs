//! `$1` / `${name}` expansion with Go's `Regexp.Expand` rules, which
//! Prometheus uses for `target_label` and `replacement`.
//!
//! The regex crate's own `Captures::expand` differs in corner cases that
//! change results, so this follows Go's documented rules instead:
//! - `$$` is a literal `$`; a `$` not followed by a valid reference is kept
//!   as text (`$-`, `${a-b}`, an unclosed `${`).
//! - A name is the longest run of letters, digits and `_`, Unicode letters
//!   included (`$1é` refers to group `1é`, which expands to nothing; the
//!   regex crate reads group 1 and keeps `é`).
//! - A name is a group number only if it is all ASCII digits without a
//!   leading zero: `$01` is the (absent) group named `01`, not group 1.
//! - `$1x` is the group named `1x`; use `${1}x` for group 1 then `x`.
//! - Unknown or unmatched groups expand to nothing.

use regex::Captures;

/// Appends `template` to `dst` with its references replaced by `caps`.
pub(super) fn expand(dst: &mut String, template: &str, caps: &Captures<'_>) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        dst.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            dst.push('$');
            rest = after;
            continue;
        }
        match reference(rest) {
            Some((group, after)) => {
                let found = match group {
                    Group::Index(i) => caps.get(i),
                    Group::Name(name) => caps.name(name),
                };
                if let Some(m) = found {
                    dst.push_str(m.as_str());
                }
                rest = after;
            }
            None => dst.push('$'),
        }
    }
    dst.push_str(rest);
}

enum Group<'a> {
    Index(usize),
    Name(&'a str),
}

/// Reads the reference after a `$`: `name` or `{name}`. Returns the group
/// and the text after it, or `None` when it is malformed.
fn reference(s: &str) -> Option<(Group<'_>, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(inner) => (true, inner),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let (name, mut after) = body.split_at(end);
    if braced {
        after = after.strip_prefix('}')?;
    }
    Some((group(name), after))
}

/// Go's `unicode.IsLetter || unicode.IsDigit || '_'`, approximated with
/// the std predicates (they also admit a few non-letter alphabetics).
fn is_name_char(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn group(name: &str) -> Group<'_> {
    let numeric = name.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = name.len() > 1 && name.starts_with('0');
    match name.parse::<usize>() {
        Ok(i) if numeric && !leading_zero => Group::Index(i),
        // Too large to be a group, or not a number: look it up by name,
        // which finds nothing for digits, as in Go.
        _ => Group::Name(name),
    }
}
