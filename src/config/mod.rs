//! The Alloy configuration language, as used by `pyroscope.*` components.
//!
//! A file goes through four steps:
//! 1. [`parse`] turns text into a [`File`] (and every syntax error it finds,
//!    not only the first);
//! 2. [`body_references`] lists what each component refers to
//!    (`pyroscope.write.staging.receiver`), so the runtime can order
//!    components and build their [`Scope`] of exports;
//! 3. [`eval`] computes an expression's [`Value`] in that scope, with the
//!    standard library (`sys.env`, `format`, `concat`, …) built in;
//! 4. a component's arguments type implements [`DecodeBlock`] and pulls its
//!    attributes and nested blocks out of a [`BlockDecoder`], converting
//!    values with [`FromValue`] (durations, byte sizes, secrets, …).
//!
//! Every error is a [`Diagnostic`] with a [`Span`];
//! [`SourceMap::render`] turns it into `file:line:col: message` with the
//! source line and a caret underline.

mod convert;
mod decode;
mod eval;
mod source;
mod stdlib;
pub mod syntax;
mod value;

pub use convert::{ByteSize, FromValue, Secret, parse_byte_size, parse_duration};
pub use decode::{BlockDecoder, DecodeBlock, Evaluated, decode};
pub use eval::{Scope, eval};
pub use source::{Diagnostic, FileId, SourceMap, Span};
pub use syntax::{
    Attribute, BinaryOp, Block, Body, Expr, ExprKind, File, ObjectField, Reference, Stmt, UnaryOp,
    body_references, parse, references,
};
pub use value::{CallError, Capsule, Function, Number, Value};
