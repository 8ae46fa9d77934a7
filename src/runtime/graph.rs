//! Orders components so that each starts after the components it
//! references, and reports reference cycles.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Diagnostic, Span};

/// One component and the components its arguments reference.
pub struct Dependency {
    pub id: String,
    pub span: Span,
    pub targets: Vec<(String, Span)>,
}

/// Returns component ids with every referenced component before its
/// referrer (so senders start before the receivers that feed them). Ties
/// keep id order, so the order is stable across runs. Components on a
/// cycle are reported and left out.
pub fn order_components(deps: &[Dependency], diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let known: BTreeSet<&str> = deps.iter().map(|d| d.id.as_str()).collect();
    let mut pending: BTreeMap<&str, BTreeSet<&str>> = deps
        .iter()
        .map(|d| {
            let targets = d
                .targets
                .iter()
                .map(|(t, _)| t.as_str())
                .filter(|t| known.contains(t) && *t != d.id)
                .collect();
            (d.id.as_str(), targets)
        })
        .collect();
    for d in deps {
        if d.targets.iter().any(|(t, _)| *t == d.id) {
            diags.push(Diagnostic::new(
                d.span,
                format!("cycle detected: {} references itself", d.id),
            ));
        }
    }

    let mut order = Vec::with_capacity(deps.len());
    loop {
        let ready: Vec<&str> = pending
            .iter()
            .filter(|(_, targets)| targets.is_empty())
            .map(|(id, _)| *id)
            .collect();
        if ready.is_empty() {
            break;
        }
        for id in ready {
            pending.remove(id);
            for targets in pending.values_mut() {
                targets.remove(id);
            }
            if deps
                .iter()
                .any(|d| d.id == id && d.targets.iter().any(|(t, _)| t == id))
            {
                continue;
            }
            order.push(id.to_string());
        }
    }
    report_cycles(deps, &pending, diags);
    order
}

fn report_cycles(
    deps: &[Dependency],
    pending: &BTreeMap<&str, BTreeSet<&str>>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for start in pending.keys() {
        if reported.contains(start) {
            continue;
        }
        // Walk first edges until a node repeats; that tail is a cycle.
        let mut path = vec![*start];
        let mut current = *start;
        while let Some(next) = pending.get(current).and_then(|t| t.iter().next()) {
            if let Some(pos) = path.iter().position(|p| p == next) {
                let cycle = &path[pos..];
                if cycle.iter().all(|c| !reported.contains(c)) {
                    let mut text: Vec<&str> = cycle.to_vec();
                    text.push(next);
                    let span = deps
                        .iter()
                        .find(|d| d.id == cycle[0])
                        .map(|d| d.span)
                        .expect("cycle members come from deps");
                    diags.push(Diagnostic::new(
                        span,
                        format!("cycle detected: {}", text.join(" -> ")),
                    ));
                    reported.extend(cycle.iter().copied());
                }
                break;
            }
            path.push(next);
            current = next;
        }
        reported.insert(start);
    }
}
