use super::*;

fn lex(text: &str) -> (Vec<TokenKind>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let tokens = tokenize(FileId::default(), text, &mut diags);
    (tokens.into_iter().map(|t| t.kind).collect(), diags)
}

fn kinds(text: &str) -> Vec<TokenKind> {
    let (kinds, diags) = lex(text);
    assert!(diags.is_empty(), "{text:?}: {diags:?}");
    kinds
}

fn single_string(text: &str) -> String {
    match kinds(text).first() {
        Some(TokenKind::String { value, .. }) => value.clone(),
        other => panic!("{text:?} lexed to {other:?}"),
    }
}

fn ident(name: &str) -> TokenKind {
    TokenKind::Ident(name.to_string())
}

fn int(i: i64) -> TokenKind {
    TokenKind::Number(Number::Int(i))
}

use TokenKind::{Eof, Terminator};

#[test]
fn comments_are_skipped_and_still_end_statements() {
    assert_eq!(
        kinds("a // note\nb"),
        [ident("a"), Terminator, ident("b"), Terminator, Eof]
    );
    assert_eq!(
        kinds("a /* one\ntwo */ b"),
        [ident("a"), Terminator, ident("b"), Terminator, Eof]
    );
    assert_eq!(
        kinds("a /* inline */ b"),
        [ident("a"), ident("b"), Terminator, Eof]
    );
    assert_eq!(kinds("// only a comment"), [Eof]);
}

#[test]
fn newlines_end_statements_only_after_operands_and_closers() {
    assert_eq!(
        kinds("a =\n1\n\n"),
        [ident("a"), TokenKind::Assign, int(1), Terminator, Eof]
    );
    assert_eq!(
        kinds("[\n1,\n]\n"),
        [
            TokenKind::LBracket,
            int(1),
            TokenKind::Comma,
            TokenKind::RBracket,
            Terminator,
            Eof
        ]
    );
    assert_eq!(
        kinds("f(\n)\n"),
        [
            ident("f"),
            TokenKind::LParen,
            TokenKind::RParen,
            Terminator,
            Eof
        ]
    );
    assert_eq!(
        kinds("x {\n}"),
        [
            ident("x"),
            TokenKind::LBrace,
            TokenKind::RBrace,
            Terminator,
            Eof
        ]
    );
}

#[test]
fn terminator_span_points_at_the_newline() {
    let mut diags = Vec::new();
    let tokens = tokenize(FileId::default(), "ab  \ncd", &mut diags);
    assert_eq!((tokens[1].span.start, tokens[1].span.end), (4, 5));
}

#[test]
fn identifiers_allow_unicode_letters_and_digits() {
    assert_eq!(
        kinds("_a1 héllo 名前")[..3],
        [ident("_a1"), ident("héllo"), ident("名前")]
    );
    assert!(is_identifier("staging_2") && is_identifier("ü"));
    assert!(!is_identifier("2x") && !is_identifier("a-b") && !is_identifier(""));
}

#[test]
fn keywords() {
    assert_eq!(
        kinds("true false null")[..3],
        [TokenKind::True, TokenKind::False, TokenKind::Null]
    );
}

#[test]
fn numbers_keep_integers_exact() {
    assert_eq!(kinds("42")[0], int(42));
    assert_eq!(kinds("9223372036854775807")[0], int(i64::MAX));
    for (text, expected) in [
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        (".5", 0.5),
        ("1.", 1.0),
    ] {
        assert_eq!(
            kinds(text)[0],
            TokenKind::Number(Number::Float(expected)),
            "{text}"
        );
    }
}

#[test]
fn number_errors() {
    let (_, diags) = lex("9223372036854775808");
    assert!(diags[0].message.contains("too large"), "{diags:?}");
    let (_, diags) = lex("1e+");
    assert_eq!(diags[0].message, "exponent has no digits");
}

#[test]
fn every_simple_escape() {
    let cases = [
        (r#""\n""#, "\n"),
        (r#""\t""#, "\t"),
        (r#""\\""#, "\\"),
        (r#""\"""#, "\""),
        (r#""\'""#, "'"),
        (r#""\a""#, "\u{7}"),
        (r#""\b""#, "\u{8}"),
        (r#""\f""#, "\u{c}"),
        (r#""\r""#, "\r"),
        (r#""\v""#, "\u{b}"),
    ];
    for (text, expected) in cases {
        assert_eq!(single_string(text), expected, "{text}");
    }
}

#[test]
fn numeric_escapes() {
    assert_eq!(single_string(r#""\x41\x42""#), "AB");
    assert_eq!(single_string(r#""\u00e9""#), "é");
    assert_eq!(single_string(r#""\U0001F600""#), "😀");
    assert_eq!(single_string(r#""\101\060""#), "A0");
    // Byte escapes may spell a multi-byte character between them.
    assert_eq!(single_string(r#""\xc3\xa9""#), "é");
}

#[test]
fn escape_errors_point_at_the_backslash() {
    let cases = [
        (r#""a\qb""#, "unknown escape sequence \\q"),
        (r#""\xZZ""#, "illegal character 'Z' in escape sequence"),
        (r#""\777""#, "octal escape value 511 is greater than 255"),
        (
            r#""\uD800""#,
            "escape sequence is an invalid Unicode code point",
        ),
        (r#""\xff""#, "string escapes produce invalid UTF-8"),
    ];
    for (text, message) in cases {
        let (_, diags) = lex(text);
        assert_eq!(diags.len(), 1, "{text}: {diags:?}");
        assert_eq!(diags[0].message, message, "{text}");
    }
    let (_, diags) = lex(r#""a\qb""#);
    assert_eq!(diags[0].span.start, 2);
}

#[test]
fn raw_strings_span_lines_without_escapes() {
    assert_eq!(single_string("`a\\n\r\nb`"), "a\\n\nb");
    let (kinds, _) = lex("`x`");
    assert_eq!(
        kinds[0],
        TokenKind::String {
            value: "x".into(),
            raw: true
        }
    );
}

#[test]
fn unterminated_things_are_reported() {
    let (kinds, diags) = lex("\"abc\nx");
    assert_eq!(diags[0].message, "string literal not terminated");
    assert!(kinds.contains(&ident("x")), "lexing goes on: {kinds:?}");
    assert_eq!(
        lex("`abc").1[0].message,
        "raw string literal not terminated"
    );
    assert_eq!(lex("/* abc").1[0].message, "block comment not terminated");
}

#[test]
fn illegal_characters_are_reported_and_skipped() {
    let (kinds, diags) = lex("a @ b");
    assert_eq!(kinds, [ident("a"), ident("b"), Terminator, Eof]);
    assert_eq!(diags[0].message, "illegal character U+0040 '@'");
    let (_, diags) = lex("'x'");
    assert_eq!(
        diags[0].message,
        "illegal single-quoted string; use double quotes"
    );
    assert_eq!(lex("a | b").1[0].message, "missing second | in ||");
}

#[test]
fn operators() {
    use TokenKind::*;
    assert_eq!(
        kinds("|| && ! != = == < <= > >= + - * / % ^ . ,"),
        [
            Or, And, Not, NotEq, Assign, Eq, Lt, LtEq, Gt, GtEq, Plus, Minus, Star, Slash, Percent,
            Caret, Dot, Comma, Eof
        ]
    );
}

#[test]
fn leading_byte_order_mark_is_ignored() {
    assert_eq!(kinds("\u{feff}a"), [ident("a"), Terminator, Eof]);
}
