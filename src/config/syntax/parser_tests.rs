use super::*;
use crate::config::syntax::ast::{ExprKind, Stmt};
use crate::config::syntax::references::body_references;

fn parse_text(text: &str) -> (SourceMap, File, Vec<Diagnostic>) {
    let mut map = SourceMap::new();
    let file = map.add("test.alloy", text);
    let (parsed, diags) = parse(&map, file);
    (map, parsed, diags)
}

fn parse_clean(text: &str) -> File {
    let (map, parsed, diags) = parse_text(text);
    let rendered: Vec<String> = diags.iter().map(|d| map.render(d)).collect();
    assert!(
        diags.is_empty(),
        "unexpected diagnostics:\n{}",
        rendered.join("\n")
    );
    parsed
}

/// `(line, column, message)` of every diagnostic.
fn errors(text: &str) -> Vec<(usize, usize, String)> {
    let (map, _, diags) = parse_text(text);
    diags
        .iter()
        .map(|d| {
            let (_, line, col) = map.line_col(d.span);
            (line, col, d.message.clone())
        })
        .collect()
}

fn error(line: usize, col: usize, message: &str) -> (usize, usize, String) {
    (line, col, message.to_string())
}

#[path = "expression_tests.rs"]
mod expressions;

const EXAMPLE: &str = r#"// Receives profiles over HTTP
pyroscope.receive_http "default" {
  http {
    listen_address = "0.0.0.0"
    listen_port = 9999
  }
  forward_to = [pyroscope.write.staging.receiver, pyroscope.write.production.receiver]
}
pyroscope.write "staging" {
  endpoint {
    url = "http://pyroscope-staging:4040"
    headers = { "X-Scope-OrgID" = "squad-1", }
  }
  external_labels = { env = sys.env("ENV") }
}
"#;

#[test]
fn the_documented_example_parses_cleanly() {
    let parsed = parse_clean(EXAMPLE);
    let names: Vec<&str> = parsed.body.stmts.iter().map(Stmt::name).collect();
    assert_eq!(names, ["pyroscope.receive_http", "pyroscope.write"]);
    let Stmt::Block(receive) = &parsed.body.stmts[0] else {
        panic!("block expected")
    };
    assert_eq!(receive.label.as_deref(), Some("default"));
    let Stmt::Block(http) = &receive.body.stmts[0] else {
        panic!("nested block expected")
    };
    assert_eq!((http.name.as_str(), http.label.as_ref()), ("http", None));
    assert_eq!(
        http.body.stmts.iter().map(Stmt::name).collect::<Vec<_>>(),
        ["listen_address", "listen_port"]
    );
    let paths: Vec<String> = body_references(&receive.body)
        .iter()
        .map(|r| r.path.join("."))
        .collect();
    assert_eq!(
        paths,
        [
            "pyroscope.write.staging.receiver",
            "pyroscope.write.production.receiver"
        ]
    );
}

#[test]
fn spans_locate_names_labels_and_bodies() {
    let text = "pyroscope.write \"staging\" {\n  url = \"x\"\n}\n";
    let (map, parsed, _) = parse_text(text);
    let Stmt::Block(block) = &parsed.body.stmts[0] else {
        panic!("block expected")
    };
    let slice = |span: Span| &text[span.start as usize..span.end as usize];
    assert_eq!(slice(block.name_span), "pyroscope.write");
    assert_eq!(block.label_span.map(slice), Some("\"staging\""));
    assert_eq!(slice(block.header_span()), "pyroscope.write \"staging\"");
    assert_eq!(slice(block.span), &text[..text.len() - 1]);
    let Stmt::Attribute(url) = &block.body.stmts[0] else {
        panic!("attribute expected")
    };
    assert_eq!(
        map.line_col(url.name_span).1..map.line_col(url.value.span).2,
        2..9
    );
}

#[test]
fn comments_anywhere() {
    let parsed = parse_clean(
        "/* head */ a = 1 // trailing\n// own line\nb { /* inline */ c = [1, /* x */ 2] }\n",
    );
    assert_eq!(parsed.body.stmts.len(), 2);
}

#[test]
fn syntax_errors_are_located_exactly() {
    assert_eq!(
        errors("a = \n"),
        [error(1, 3, "expected a value after \"=\", got end of file")]
    );
    assert_eq!(
        errors("a = \nb = 1\n"),
        [error(
            1,
            3,
            "expected a value after \"=\", got identifier \"b\""
        )]
    );
    assert_eq!(
        errors("a = )\n"),
        [error(1, 5, "expected expression, got \")\"")]
    );
    assert_eq!(
        errors("a = 1 b = 2\n"),
        [error(
            1,
            7,
            "expected newline after statement, got identifier \"b\""
        )]
    );
    assert_eq!(
        errors("foo 1\n"),
        [error(
            1,
            5,
            "expected \"=\" or \"{\" after \"foo\", got number"
        )]
    );
    assert_eq!(
        errors("a.b 1\n"),
        [error(1, 5, "expected \"{\" to open the block, got number")]
    );
    assert_eq!(
        errors("x {\n  a.b = 1\n}\n"),
        [error(
            2,
            3,
            "attribute name \"a.b\" must be a single identifier, without \".\""
        )]
    );
    assert_eq!(
        errors("a \"l\" = 1\n"),
        [error(1, 1, "attributes cannot have labels")]
    );
    assert_eq!(
        errors("}\n"),
        [error(1, 1, "unexpected \"}\" with no block to close")]
    );
    assert_eq!(
        errors("a. = 1\n"),
        [error(1, 4, "expected identifier after \".\", got \"=\"")]
    );
    assert_eq!(
        errors("x = a.\n"),
        [error(1, 7, "expected field name after \".\", got newline")]
    );
    assert_eq!(
        errors("= 1\n"),
        [error(1, 1, "expected attribute or block, got \"=\"")]
    );
    assert_eq!(
        errors("x = f(1\n"),
        [error(1, 8, "missing \",\" before newline")]
    );
    assert_eq!(
        errors("x = [\n  1,\n"),
        [error(2, 5, "expected \"]\", got newline")]
    );
}

#[test]
fn block_labels_must_be_double_quoted_identifiers() {
    assert_eq!(
        errors("a \"my-label\" {\n}\n"),
        [error(
            1,
            3,
            "block label must be a valid identifier, got \"my-label\""
        )]
    );
    assert_eq!(
        errors("a `raw` {\n}\n"),
        [error(1, 3, "block label must be a double-quoted string")]
    );
    assert_eq!(
        errors("a \"\" {\n}\n"),
        [error(
            1,
            3,
            "block label must be a valid identifier, got \"\""
        )]
    );
    parse_clean("a \"ok_label_2\" {\n}\n");
}

#[test]
fn unclosed_blocks_point_at_their_opening_brace() {
    assert_eq!(
        errors("outer {\n  inner {\n    a = 1\n"),
        [
            error(
                1,
                7,
                "block \"outer\" is not closed: expected \"}\" before end of file"
            ),
            error(
                2,
                9,
                "block \"inner\" is not closed: expected \"}\" before end of file"
            ),
        ]
    );
}

#[test]
fn multi_line_lists_need_a_comma_after_the_last_element() {
    let (map, _, diags) = parse_text("x = [\n  1,\n  2\n]\n");
    assert_eq!(diags.len(), 1);
    assert_eq!(map.line_col(diags[0].span), ("test.alloy".into(), 3, 4));
    assert_eq!(diags[0].message, "missing \",\" before newline");
    assert!(diags[0].help.is_some());
}

#[test]
fn recovery_reports_every_error_in_a_file() {
    let text =
        "a = \nb {\n  c = [1, 2\n  d = )\n}\ne = 3 4\nf = \"ok\"\ng \"bad label\" {\n  h = 1\n}\n";
    let (map, parsed, diags) = parse_text(text);
    let lines: Vec<usize> = diags.iter().map(|d| map.line_col(d.span).1).collect();
    assert_eq!(lines, [1, 3, 4, 6, 8], "{diags:#?}");
    let names: Vec<&str> = parsed.body.stmts.iter().map(Stmt::name).collect();
    assert_eq!(names, ["a", "b", "e", "f", "g"]);
    let Stmt::Block(g) = &parsed.body.stmts[4] else {
        panic!("block g")
    };
    assert_eq!(
        g.body.stmts.len(),
        1,
        "the body after a bad label is still parsed"
    );
}

#[test]
fn a_broken_statement_inside_a_block_does_not_swallow_the_block_end() {
    let (_, parsed, diags) = parse_text("a {\n  b = = {\n}\nc = 1\n");
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(
        parsed.body.stmts.iter().map(Stmt::name).collect::<Vec<_>>(),
        ["a", "c"]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 20_000;
    let cases = [
        format!("x = {}", "[".repeat(depth)),
        format!("x = {}1", "(".repeat(depth)),
        format!("x = {}a", "!".repeat(depth)),
        format!("x = {}a", "-".repeat(depth)),
        format!("x = a{}", ".b".repeat(depth)),
        format!("x = a{}", "[0]".repeat(depth)),
        format!("x = f{}", "()".repeat(depth)),
        format!("x = 1{}", " + 1".repeat(depth)),
        format!("x = 2{}", " ^ 2".repeat(depth)),
        format!("x = {}", "{ a = ".repeat(depth)),
        "a {\n".repeat(depth),
    ];
    for text in cases {
        let (_, parsed, diags) = parse_text(&text);
        assert!(!diags.is_empty(), "{}", &text[..20]);
        let _ = body_references(&parsed.body);
        for stmt in &parsed.body.stmts {
            if let Stmt::Attribute(attribute) = stmt {
                let _ = crate::config::eval(&attribute.value, &());
            }
        }
    }
}

#[test]
fn nesting_within_the_limits_is_fine() {
    let text = format!("x = {}1{}\n", "[".repeat(100), "]".repeat(100));
    parse_clean(&text);
    parse_clean(&format!("x = 1{}\n", " + 1".repeat(200)));
}

/// Deterministic pseudo-random garbage built from fragments that stress
/// the lexer and the recovery paths. Nothing may panic or loop forever.
#[test]
fn garbage_never_panics() {
    const FRAGMENTS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        "\"",
        "\\",
        "`",
        ".",
        ",",
        "=",
        "==",
        "\n",
        " ",
        "a",
        "b.c",
        "1",
        "1.5",
        "1e",
        ".5",
        "/*",
        "*/",
        "//",
        "!",
        "-",
        "^",
        "é",
        "'",
        "\\x",
        "\\u12",
        "\"label\"",
        "||",
        "&",
        "|",
        "@",
        "\t",
        "\r\n",
        "\u{feff}",
        "null",
        "true",
        "\\777",
        "9999999999999999999999",
        "sys.env(",
        "a \"l\" {",
        "x = ",
        "\0",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for _ in 0..3000 {
        let len = next(120);
        let text: String = (0..len).map(|_| FRAGMENTS[next(FRAGMENTS.len())]).collect();
        let (map, parsed, diags) = parse_text(&text);
        for diagnostic in &diags {
            let _ = map.render(diagnostic);
        }
        let _ = body_references(&parsed.body);
        for stmt in &parsed.body.stmts {
            if let Stmt::Attribute(attribute) = stmt {
                let _ = crate::config::eval(&attribute.value, &());
            }
        }
    }
}

#[test]
fn truncations_of_a_real_config_never_panic() {
    for end in (0..EXAMPLE.len()).filter(|&i| EXAMPLE.is_char_boundary(i)) {
        let (_, _, _) = parse_text(&EXAMPLE[..end]);
        let (_, _, _) = parse_text(&EXAMPLE[end..]);
    }
}
