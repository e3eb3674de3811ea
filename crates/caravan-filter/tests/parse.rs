//! Parsing: precedence, spellings that mean the same thing, canonical printing and bad input.

use caravan_filter::{Filter, MAX_EXPRESSION_LEN, MAX_NESTING_DEPTH, ParseError};

fn parse(expr: &str) -> Filter {
    Filter::parse(expr).unwrap_or_else(|err| panic!("{expr:?} should parse: {err}"))
}

fn canonical(expr: &str) -> String {
    parse(expr).to_string()
}

fn error(expr: &str) -> ParseError {
    match Filter::parse(expr) {
        Ok(filter) => panic!("{expr:?} should not parse, got {filter}"),
        Err(err) => err,
    }
}

fn same(a: &str, b: &str) {
    assert_eq!(parse(a), parse(b), "{a:?} and {b:?} should parse the same");
}

fn different(a: &str, b: &str) {
    assert_ne!(parse(a), parse(b), "{a:?} and {b:?} should differ");
}

#[test]
fn every_operator_parses_and_prints_canonically() {
    let cases = [
        (r#"Status == "ready""#, r#"Status == "ready""#),
        (r#"Status != "down""#, r#"Status != "down""#),
        (r#""dc1" in Datacenters"#, r#""dc1" in Datacenters"#),
        (r#""dc1" not in Datacenters"#, r#""dc1" not in Datacenters"#),
        (r#"Datacenters contains "dc1""#, r#""dc1" in Datacenters"#),
        (
            r#"Datacenters not contains "dc1""#,
            r#""dc1" not in Datacenters"#,
        ),
        (r#"Name matches "^me.$""#, r#"Name matches "^me.$""#),
        (r#"Name not matches "^x""#, r#"Name not matches "^x""#),
        ("Meta is empty", "Meta is empty"),
        ("Meta is not empty", "Meta is not empty"),
        ("DrainStrategy is nil", "DrainStrategy is nil"),
        ("DrainStrategy is not nil", "DrainStrategy is not nil"),
        ("not Drain == true", r#"not Drain == "true""#),
        (
            "any Events as e { e.Subsystem == Cluster }",
            r#"any Events as e { e.Subsystem == "Cluster" }"#,
        ),
        (
            "all HostVolumes as k, v { v.ReadOnly == false }",
            r#"all HostVolumes as k, v { v.ReadOnly == "false" }"#,
        ),
        (
            "any Meta as k, _ { k matches `^connect` }",
            r#"any Meta as k, _ { k matches "^connect" }"#,
        ),
        (
            "all Attributes as _, v { v != `` }",
            r#"all Attributes as _, v { v != "" }"#,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(canonical(input), expected, "canonical form of {input:?}");
        assert_eq!(parse(expected), parse(input), "{expected:?} re-parses");
    }
}

#[test]
fn precedence_is_not_then_and_then_or() {
    same(
        "a == 1 and not b == 2 or c == 3",
        "(a == 1 and (not b == 2)) or c == 3",
    );
    different(
        "a == 1 and not b == 2 or c == 3",
        "a == 1 and not (b == 2 or c == 3)",
    );
    same(
        "a == 1 or b == 2 and c == 3",
        "a == 1 or (b == 2 and c == 3)",
    );
    different(
        "a == 1 or b == 2 and c == 3",
        "(a == 1 or b == 2) and c == 3",
    );
    same("not a == 1 and b == 2", "(not a == 1) and b == 2");
    assert_eq!(
        canonical("(a == 1 or b == 2) and not (c == 3 and d == 4)"),
        r#"(a == "1" or b == "2") and not (c == "3" and d == "4")"#
    );
}

#[test]
fn chains_are_associative_and_double_not_cancels() {
    same(
        "a == 1 and (b == 2 and c == 3)",
        "(a == 1 and b == 2) and c == 3",
    );
    same("a == 1 or (b == 2 or c == 3)", "a == 1 or b == 2 or c == 3");
    same("not not a == 1", "a == 1");
    same("not (not a == 1)", "a == 1");
    same("not not not a == 1", "not a == 1");
}

#[test]
fn parentheses_and_whitespace_are_optional_where_the_grammar_says() {
    same("((a == 1))", "a == 1");
    same("( a == 1 )", "a == 1");
    same("\t\r\n a==1 \n", "a == 1");
    same("a==\"x\"", r#"a == "x""#);
    same("(a == 1) and (b == 2)", "a == 1 and b == 2");
}

#[test]
fn string_quotings_and_escapes() {
    same(r#"a == "x""#, "a == `x`");
    same(r#"a == "x""#, "a == x");
    same(r#"a == "1""#, "a == 1");
    same(r#"a == "-1.5""#, "a == -1.5");
    same(r#"a == "tab\there""#, "a == \"tab\\u0009here\"");
    same(r#"a == "q\"uote""#, r#"a == `q"uote`"#);
    same(r#"a == "back\\slash""#, r"a == `back\slash`");
    same(r#"a == "caf\u00e9""#, "a == `café`");
    same(r#"a == "\x41\101""#, "a == AA");
    same(r#"a == "line\nbreak""#, "a == `line\nbreak`");
    // A raw string keeps backslashes as written.
    different(r#"a == "\n""#, r"a == `\n`");
    assert_eq!(canonical(r"a == `\n`"), r#"a == "\\n""#);
    assert_eq!(canonical("a == `\u{1}`"), r#"a == "\u0001""#);
}

#[test]
fn selector_spellings() {
    same(
        r#"Meta["connect.log_level"] == "info""#,
        r#"Meta[`connect.log_level`] == "info""#,
    );
    same(r#"Meta[ "a" ] == 1"#, "Meta.a == 1");
    same(r#""/Meta/a" == 1"#, "Meta.a == 1");
    same(
        r#""/Attributes/os.name" == 1"#,
        r#"Attributes["os.name"] == 1"#,
    );
    same(r#""/a~1b/c~0d" == 1"#, r#"a/b["c~d"] == 1"#);
    same(
        "NodeResources.Networks.0.IP == 1",
        r#"NodeResources.Networks["0"].IP == 1"#,
    );
    assert_eq!(
        canonical(r#"Attributes["os.name"] == "ubuntu""#),
        r#"Attributes["os.name"] == "ubuntu""#
    );
    assert_eq!(canonical("Networks.0.IP == 1"), r#"Networks.0.IP == "1""#);
    assert_eq!(canonical(r#""/0/a" == 1"#), r#""/0/a" == "1""#);
    assert_eq!(canonical(r#""" == 1"#), r#""" == "1""#);
    // A field called like a keyword is still a field where a selector is expected.
    assert_eq!(canonical("in == 1"), r#"in == "1""#);
    assert_eq!(canonical(r#""/not" is empty"#), r#""/not" is empty"#);
    assert_eq!(canonical(r#""x" in not"#), r#""x" in "/not""#);
    assert_eq!(canonical("any is empty"), "any is empty");
    assert_eq!(canonical("all contains x"), r#""x" in all"#);
    assert_eq!(canonical("any in all"), r#""any" in all"#);
    assert_eq!(
        canonical("any as as v { v is nil }"),
        "any as as v { v is nil }"
    );
    // Bare words as values keep their dots.
    assert_eq!(canonical("a == b.c.0"), r#"a == "b.c.0""#);
}

#[test]
fn keywords_are_lowercase_only() {
    assert!(matches!(
        error("a == 1 AND b == 2"),
        ParseError::TrailingInput { .. }
    ));
    assert!(matches!(error("a IS EMPTY"), ParseError::Unexpected { .. }));
    assert_eq!(canonical("NOT == 1"), r#"NOT == "1""#);
}

#[test]
fn word_operators_need_whitespace() {
    for (expr, keyword) in [
        (r#"a == "x"and b == 1"#, "and"),
        (r#"a == "x" or(b == 1)"#, "or"),
        ("not(a == 1)", "not"),
        (r#""x"in a"#, "in"),
        (r#"a contains"x""#, "contains"),
        (r#"a matches"x""#, "matches"),
        (r#"a not contains"x""#, "contains"),
        (r#""/a"is empty"#, "is"),
    ] {
        match error(expr) {
            ParseError::MissingWhitespace { keyword: k, .. } => assert_eq!(k, keyword, "{expr}"),
            other => panic!("{expr:?}: expected missing whitespace, got {other:?}"),
        }
    }
}

#[test]
fn bad_input_messages() {
    let cases = [
        ("", "empty expression"),
        (" \t\n", "empty expression"),
        (
            r#"Name == "abc"#,
            "unterminated string literal at position 8",
        ),
        ("Name == `abc", "unterminated string literal at position 8"),
        (
            r#"Meta["abc] == 1"#,
            "unterminated string literal at position 5",
        ),
        ("(a == 1", "unmatched parentheses at position 0"),
        ("a == 1)", "unmatched parentheses at position 6"),
        ("((a == 1) or b == 2", "unmatched parentheses at position 0"),
        (r#"Name =~ "x""#, "unknown operator \"=~\" at position 5"),
        ("Name = x", "unknown operator \"=\" at position 5"),
        ("Count >= 3", "unknown operator \">=\" at position 6"),
        (
            "a == 1 b == 2",
            "unexpected \"b\" at position 7 after the end of the expression",
        ),
        (
            "a == 1 and",
            "expected an expression at position 10, found end of expression",
        ),
        (
            "a ==",
            "expected a value at position 4, found end of expression",
        ),
        (
            "a",
            "expected an operator at position 1, found end of expression",
        ),
        (
            "a is",
            "expected \"empty\" or \"nil\" at position 4, found end of expression",
        ),
        (
            "a not foo",
            "expected \"in\", \"contains\" or \"matches\" after \"not\" at position 6, found \"foo\"",
        ),
        ("a == 01", "invalid number literal \"01\" at position 5"),
        (
            "a == 1.2.3",
            "invalid number literal \"1.2.3\" at position 5",
        ),
        ("a == 5abc", "invalid number literal \"5abc\" at position 5"),
        (
            "a[1] == 1",
            "invalid index at position 1: expected a quoted map key after \"[\"",
        ),
        (r#"a["x" == 1"#, "unclosed index expression at position 1"),
        (
            r#""x" == 1"#,
            "invalid selector at position 0: a quoted selector must be a JSON pointer starting with \"/\", found \"x\"",
        ),
        (
            "`/a` == 1",
            "expected a selector at position 0, found \"`/a`\"",
        ),
        ("1 == 1", "expected a selector at position 0, found \"1\""),
        (
            "a. == 1",
            "invalid selector at position 0: expected a field name or an index after \".\" at position 1",
        ),
        (
            r#""x" in 5"#,
            "expected a selector at position 7, found \"5\"",
        ),
        (
            "a == \"x\\qy\"",
            "invalid escape sequence \\q in string literal at position 7",
        ),
        ("a # 1", "unexpected character '#' at position 2"),
        ("a == [1]", "unexpected character '[' at position 5"),
        (
            r#"Name matches "(""#,
            "invalid regular expression \"(\" at position 13: unclosed group",
        ),
        (
            "any Events as e, e { e is nil }",
            "\"e\" cannot be used as a placeholder for both the index and the value at position 17",
        ),
        (
            "any Events as _, _ { a is nil }",
            "expected a name for the index or the value at position 17, found \"_\"",
        ),
        (
            "any Events e { a is nil }",
            "expected \"as\" at position 11, found \"e\"",
        ),
        (
            "any Events as e a is nil",
            "expected \"{\" at position 16, found \"a\"",
        ),
        (
            "any Events as e { a is nil",
            "expected \"and\", \"or\" or \"}\" at position 26, found end of expression",
        ),
        (
            "any Events as not { a is nil }",
            "expected a binding name at position 14, found \"not\"",
        ),
    ];
    for (expr, message) in cases {
        assert_eq!(error(expr).to_string(), message, "error for {expr:?}");
    }
}

#[test]
fn invalid_regex_is_a_parse_error() {
    for pattern in ["(", "[a-", "a{2,1}", "*", r"\p{Nope}"] {
        let expr = format!("Name matches `{pattern}`");
        assert!(
            matches!(error(&expr), ParseError::InvalidRegex { .. }),
            "{pattern}"
        );
    }
    // Bounded compiled size, so a short pattern cannot allocate without limit.
    assert!(matches!(
        error("Name matches `((a{1000}){1000}){1000}`"),
        ParseError::InvalidRegex { .. }
    ));
}

#[test]
fn length_limit() {
    let base = "Name == ";
    let exact = format!("{base}{}", "x".repeat(MAX_EXPRESSION_LEN - base.len()));
    assert_eq!(exact.len(), MAX_EXPRESSION_LEN);
    parse(&exact);
    let over = format!("{exact}x");
    assert_eq!(
        error(&over).to_string(),
        format!("expression is longer than {MAX_EXPRESSION_LEN} bytes")
    );
}

#[test]
fn depth_limit() {
    let nested = |open: &str, close: &str, levels: usize| {
        format!("{}a == 1{}", open.repeat(levels), close.repeat(levels))
    };
    parse(&nested("(", ")", MAX_NESTING_DEPTH));
    assert!(matches!(
        error(&nested("(", ")", MAX_NESTING_DEPTH + 1)),
        ParseError::TooDeep { position: 64 }
    ));
    parse(&nested("not ", "", MAX_NESTING_DEPTH));
    assert!(matches!(
        error(&nested("not ", "", MAX_NESTING_DEPTH + 1)),
        ParseError::TooDeep { .. }
    ));
    parse(&nested("any x as v { ", " }", MAX_NESTING_DEPTH));
    assert!(matches!(
        error(&nested("all x as v { ", " }", MAX_NESTING_DEPTH + 1)),
        ParseError::TooDeep { .. }
    ));
    // Mixed nesting counts together.
    let mixed = "(not any x as v { ".repeat(30) + "a == 1" + &" })".repeat(30);
    assert!(matches!(error(&mixed), ParseError::TooDeep { .. }));
    // Deep input far past the limit fails cleanly instead of overflowing the stack.
    let huge = "(".repeat(MAX_EXPRESSION_LEN);
    assert!(matches!(error(&huge), ParseError::TooDeep { .. }));
    // Long flat chains are not nesting.
    let chain = vec!["a == 1"; 500].join(" and ");
    parse(&chain);
}

#[test]
fn filter_is_send_sync_clone_and_from_str() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_traits::<Filter>();
    let filter: Filter = "a == 1".parse().unwrap();
    assert_eq!(filter.clone(), filter);
}
