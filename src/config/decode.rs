//! Decoding a block body into a Rust type. A type's `decode` asks for the
//! attributes and blocks it understands; whatever it never asked for is
//! reported as unknown by [`BlockDecoder::finish`]. The names it asks for
//! are its schema.

use super::convert::FromValue;
use super::eval::{Scope, eval};
use super::source::{Diagnostic, Span, did_you_mean};
use super::syntax::{Attribute, Block, Body, Stmt};
use super::value::Value;

/// A type that decodes itself from a block body. `decode` must always
/// return a value (defaults where something is missing or wrong); errors
/// go to the decoder.
pub trait DecodeBlock: Sized {
    fn decode(d: &mut BlockDecoder<'_>) -> Self;
}

/// Decodes `body` as a `T` and reports unknown or duplicate names.
pub fn decode<T: DecodeBlock>(
    body: &Body,
    header_span: Span,
    scope: &dyn Scope,
    diags: &mut Vec<Diagnostic>,
) -> T {
    let mut decoder = BlockDecoder::new(body, header_span, scope, diags);
    let decoded = T::decode(&mut decoder);
    decoder.finish();
    decoded
}

pub struct BlockDecoder<'a> {
    body: &'a Body,
    header_span: Span,
    scope: &'a dyn Scope,
    diags: &'a mut Vec<Diagnostic>,
    /// Per statement of `body`: whether some request has taken it.
    taken: Vec<bool>,
    attribute_names: Vec<String>,
    block_names: Vec<String>,
    /// What was decoded, in the order asked for, for display.
    evaluated: Vec<Evaluated>,
}

/// One decoded statement as evaluated: what a UI shows as a component's
/// arguments. Secrets hold no value.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluated {
    Attribute { name: String, value: Option<Value> },
    Block { name: String, body: Vec<Evaluated> },
}

impl<'a> BlockDecoder<'a> {
    pub fn new(
        body: &'a Body,
        header_span: Span,
        scope: &'a dyn Scope,
        diags: &'a mut Vec<Diagnostic>,
    ) -> Self {
        BlockDecoder {
            body,
            header_span,
            scope,
            diags,
            taken: vec![false; body.stmts.len()],
            attribute_names: Vec::new(),
            block_names: Vec::new(),
            evaluated: Vec::new(),
        }
    }

    pub fn header_span(&self) -> Span {
        self.header_span
    }

    /// Reports an error about the block as a whole, at its header.
    pub fn error(&mut self, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.header_span, message));
    }

    pub fn error_at(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    /// The span of the attribute's value, if it is set.
    pub fn attr_span(&self, name: &str) -> Option<Span> {
        self.body.stmts.iter().find_map(|stmt| match stmt {
            Stmt::Attribute(attribute) if attribute.name == name => Some(attribute.value.span),
            _ => None,
        })
    }

    /// An attribute that must be set. `null` is passed on to `T` (so
    /// `Option<T>` accepts it).
    pub fn required<T: FromValue>(&mut self, name: &str) -> Option<T> {
        let Some(attribute) = self.take_attribute(name) else {
            self.error(format!("missing required attribute {name:?}"));
            return None;
        };
        let value = self.evaluate(attribute)?;
        self.convert(attribute, value)
    }

    /// An attribute that may be left out; `None` when absent, `null` or
    /// invalid (invalid values are reported).
    pub fn optional<T: FromValue>(&mut self, name: &str) -> Option<T> {
        let attribute = self.take_attribute(name)?;
        match self.evaluate(attribute)? {
            Value::Null => None,
            value => self.convert(attribute, value),
        }
    }

    /// An attribute with a default for when it is absent, `null` or invalid.
    /// A default in use is shown among the evaluated arguments, as Alloy
    /// shows every argument.
    pub fn attr<T: FromValue>(&mut self, name: &str, default: T) -> T {
        if let Some(value) = self.optional(name) {
            return value;
        }
        let shown = match T::SECRET {
            true => Some(None),
            false => default.to_value().map(Some),
        };
        if let Some(value) = shown {
            self.evaluated.push(Evaluated::Attribute {
                name: name.to_owned(),
                value,
            });
        }
        default
    }

    /// A block that may be given at most once; when absent, `T` as an empty
    /// block decodes (its defaults), shown among the evaluated arguments.
    pub fn block_or_default<T: DecodeBlock>(&mut self, name: &str) -> T {
        if let Some(block) = self.block(name) {
            return block;
        }
        let empty = Body {
            stmts: Vec::new(),
            span: self.header_span,
        };
        // An empty block's complaints (a required attribute) are not the
        // user's: only its defaults are wanted here.
        let mut ignored = Vec::new();
        let mut nested = BlockDecoder::new(&empty, self.header_span, self.scope, &mut ignored);
        let decoded = T::decode(&mut nested);
        let body = nested.finish();
        self.evaluated.push(Evaluated::Block {
            name: name.to_owned(),
            body,
        });
        decoded
    }

    /// A block that may be given at most once.
    pub fn block<T: DecodeBlock>(&mut self, name: &str) -> Option<T> {
        let blocks = self.take_blocks(name);
        let (first, extra) = blocks.split_first()?;
        for block in extra {
            self.error_at(
                block.name_span,
                format!("block {name:?} may only be given once"),
            );
        }
        Some(self.decode_nested(first))
    }

    /// A block that may be repeated; each one is decoded on its own.
    pub fn blocks<T: DecodeBlock>(&mut self, name: &str) -> Vec<T> {
        let blocks = self.take_blocks(name);
        blocks
            .into_iter()
            .map(|block| self.decode_nested(block))
            .collect()
    }

    /// Reports every statement no request has taken; returns what was
    /// decoded.
    pub fn finish(self) -> Vec<Evaluated> {
        let untaken = self
            .body
            .stmts
            .iter()
            .zip(&self.taken)
            .filter(|&(_, &taken)| !taken);
        for (stmt, _) in untaken {
            let diagnostic = match stmt {
                Stmt::Attribute(attribute) => {
                    self.unknown("attribute", attribute.name_span, &attribute.name)
                }
                Stmt::Block(block) => self.unknown("block", block.name_span, &block.name),
            };
            self.diags.push(diagnostic);
        }
        self.evaluated
    }

    fn unknown(&self, kind: &str, span: Span, name: &str) -> Diagnostic {
        let (same_kind, other_kind) = if kind == "attribute" {
            (&self.attribute_names, &self.block_names)
        } else {
            (&self.block_names, &self.attribute_names)
        };
        if other_kind.iter().any(|known| known == name) {
            let (message, help) = if kind == "attribute" {
                (
                    format!("{name:?} is a block, not an attribute"),
                    format!("write it as `{name} {{ … }}`"),
                )
            } else {
                (
                    format!("{name:?} is an attribute, not a block"),
                    format!("write it as `{name} = …`"),
                )
            };
            return Diagnostic::new(span, message).with_help(help);
        }
        let diagnostic = Diagnostic::new(span, format!("unknown {kind} {name:?}"));
        match did_you_mean(name, same_kind.iter().map(String::as_str)) {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        }
    }

    /// Finds the attribute, records the name as known and reports repeats.
    fn take_attribute(&mut self, name: &str) -> Option<&'a Attribute> {
        remember(&mut self.attribute_names, name);
        let body: &'a Body = self.body;
        let mut first = None;
        for (stmt, taken) in body.stmts.iter().zip(self.taken.iter_mut()) {
            let Stmt::Attribute(attribute) = stmt else {
                continue;
            };
            if attribute.name != name {
                continue;
            }
            if first.is_none() {
                first = Some(attribute);
            } else if !*taken {
                let message = format!("attribute {name:?} may only be given once");
                self.diags
                    .push(Diagnostic::new(attribute.name_span, message));
            }
            *taken = true;
        }
        first
    }

    fn take_blocks(&mut self, name: &str) -> Vec<&'a Block> {
        remember(&mut self.block_names, name);
        let body: &'a Body = self.body;
        let mut found = Vec::new();
        for (stmt, taken) in body.stmts.iter().zip(self.taken.iter_mut()) {
            if let Stmt::Block(block) = stmt
                && block.name == name
            {
                *taken = true;
                found.push(block);
            }
        }
        found
    }

    fn decode_nested<T: DecodeBlock>(&mut self, block: &'a Block) -> T {
        if let Some(label_span) = block.label_span {
            self.error_at(
                label_span,
                format!("block {:?} does not take a label", block.name),
            );
        }
        let mut nested =
            BlockDecoder::new(&block.body, block.header_span(), self.scope, self.diags);
        let decoded = T::decode(&mut nested);
        let body = nested.finish();
        self.evaluated.push(Evaluated::Block {
            name: block.name.clone(),
            body,
        });
        decoded
    }

    fn evaluate(&mut self, attribute: &Attribute) -> Option<Value> {
        eval(&attribute.value, self.scope)
            .map_err(|d| self.diags.push(d))
            .ok()
    }

    fn convert<T: FromValue>(&mut self, attribute: &Attribute, value: Value) -> Option<T> {
        let converted = T::from_value(&value);
        if converted.is_ok() {
            let shown = (!T::SECRET && !matches!(value, Value::Secret(_))).then_some(value);
            self.evaluated.push(Evaluated::Attribute {
                name: attribute.name.clone(),
                value: shown,
            });
        }
        converted
            .map_err(|message| {
                let message = format!("attribute {:?}: {message}", attribute.name);
                self.diags
                    .push(Diagnostic::new(attribute.value.span, message));
            })
            .ok()
    }
}

fn remember(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|known| known == name) {
        names.push(name.to_string());
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
