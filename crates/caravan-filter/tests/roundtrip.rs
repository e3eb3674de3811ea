//! Properties: the canonical printing of any parsed filter parses back to the same filter, and
//! no input makes the parser (or the evaluator, on what parses) panic.

use caravan_filter::Filter;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

/// Field names, including words that are operators elsewhere; `not` is the one word the grammar
/// never reads as a field where an expression starts, so it is left out.
const NAMES: &[&str] = &[
    "Name",
    "Status",
    "Meta",
    "Attributes",
    "a",
    "x_1",
    "a/b",
    "Z9",
    "in",
    "is",
    "and",
    "or",
    "any",
    "all",
    "as",
    "empty",
    "nil",
    "contains",
    "matches",
    "NOT",
    "True",
];

const PATTERNS: &[&str] = &[
    "^a",
    "b$",
    ".*",
    r"\d+",
    "(?i)ready",
    "[a-z]{2,3}",
    r"\.",
    "a|b",
    "",
    r#"\""#,
    "é+",
];

fn ws() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(" ".to_owned()),
        1 => Just("  ".to_owned()),
        1 => Just("\t".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just("\r\n ".to_owned()),
    ]
    .boxed()
}

fn optional_ws() -> BoxedStrategy<String> {
    prop_oneof![2 => Just(String::new()), 1 => ws()].boxed()
}

fn name() -> BoxedStrategy<String> {
    proptest::sample::select(NAMES)
        .prop_map(str::to_owned)
        .boxed()
}

/// Any text, as a Go double-quoted literal with a random choice of escapes.
fn quoted(content: String, style: u8) -> String {
    let mut out = String::from('"');
    for c in content.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str(if style.is_multiple_of(2) {
                "\\n"
            } else {
                "\\u000a"
            }),
            c if c.is_control() => out.push_str(&format!("\\U{:08x}", u32::from(c))),
            c if c.is_ascii_alphabetic() && style == 3 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_ascii_digit() && style == 4 => {
                out.push_str(&format!("\\{:03o}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string literal of arbitrary content, double-quoted or raw when raw can hold it.
fn string_literal() -> BoxedStrategy<String> {
    (any::<String>(), 0u8..6)
        .prop_map(|(content, style)| {
            if style == 5 && !content.contains(['`', '\r']) {
                format!("`{content}`")
            } else {
                quoted(content, style)
            }
        })
        .boxed()
}

fn number_literal() -> BoxedStrategy<String> {
    "-?(0|[1-9][0-9]{0,12})(\\.[0-9]{1,4})?".boxed()
}

/// A bare selector: a name, then `.name`, `.digits` or `["any key"]` parts.
fn bare_selector() -> BoxedStrategy<String> {
    let part = prop_oneof![
        name().prop_map(|n| format!(".{n}")),
        "[0-9]{1,3}".prop_map(|d| format!(".{d}")),
        (optional_ws(), string_literal(), optional_ws())
            .prop_map(|(a, key, b)| format!("[{a}{key}{b}]")),
    ];
    (name(), proptest::collection::vec(part, 0..3))
        .prop_map(|(first, rest)| first + &rest.concat())
        .boxed()
}

/// A quoted JSON pointer, `~` and `/` inside segments escaped.
fn pointer_selector() -> BoxedStrategy<String> {
    let segment = "([a-zA-Z0-9é日._:|-]|~0|~1){1,6}";
    proptest::collection::vec(segment, 0..4)
        .prop_map(|segments| {
            let path: String = segments.iter().map(|s| format!("/{s}")).collect();
            format!("\"{path}\"")
        })
        .boxed()
}

fn selector() -> BoxedStrategy<String> {
    prop_oneof![4 => bare_selector(), 1 => pointer_selector()].boxed()
}

fn value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => string_literal(),
        1 => number_literal(),
        1 => bare_selector(),
        1 => Just("true".to_owned()),
    ]
    .boxed()
}

/// One match expression in any of its forms.
fn match_expr() -> BoxedStrategy<String> {
    let pattern = proptest::sample::select(PATTERNS).prop_map(|p| quoted(p.to_owned(), 0));
    prop_oneof![
        (
            selector(),
            optional_ws(),
            prop_oneof![Just("=="), Just("!=")],
            optional_ws(),
            value()
        )
            .prop_map(|(s, a, op, b, v)| format!("{s}{a}{op}{b}{v}")),
        (
            selector(),
            ws(),
            prop_oneof![Just("contains"), Just("not contains")],
            ws(),
            value()
        )
            .prop_map(|(s, a, op, b, v)| format!("{s}{a}{op}{b}{v}")),
        (
            value(),
            ws(),
            prop_oneof![Just("in"), Just("not in")],
            ws(),
            selector()
        )
            .prop_map(|(v, a, op, b, s)| format!("{v}{a}{op}{b}{s}")),
        (
            selector(),
            ws(),
            prop_oneof![Just("matches"), Just("not matches")],
            ws(),
            pattern
        )
            .prop_map(|(s, a, op, b, p)| format!("{s}{a}{op}{b}{p}")),
        (
            selector(),
            ws(),
            prop_oneof![
                Just("is empty"),
                Just("is not empty"),
                Just("is nil"),
                Just("is not nil")
            ]
        )
            .prop_map(|(s, a, op)| format!("{s}{a}{op}")),
    ]
    .boxed()
}

fn binding() -> BoxedStrategy<String> {
    let binder = proptest::sample::select(&["k", "v", "e", "Name", "x_1"][..]);
    prop_oneof![
        binder.clone().prop_map(str::to_owned),
        (binder.clone(), binder.clone())
            .prop_filter("distinct names", |(k, v)| k != v)
            .prop_map(|(k, v)| format!("{k}, {v}")),
        binder.clone().prop_map(|k| format!("{k},_")),
        binder.prop_map(|v| format!("_ ,{v}")),
    ]
    .boxed()
}

/// A whole expression: atoms joined by `and`/`or`, atoms being matches, negations,
/// parenthesised expressions and collection expressions.
fn expression() -> BoxedStrategy<String> {
    match_expr()
        .prop_recursive(5, 48, 4, |inner| {
            let atom = prop_oneof![
                2 => match_expr(),
                1 => (ws(), inner.clone()).prop_map(|(w, e)| format!("not{w}({e})")),
                1 => (ws(), match_expr()).prop_map(|(w, e)| format!("not{w}{e}")),
                1 => (optional_ws(), inner.clone(), optional_ws())
                    .prop_map(|(a, e, b)| format!("({a}{e}{b})")),
                1 => (
                    prop_oneof![Just("any"), Just("all")],
                    selector(),
                    binding(),
                    optional_ws(),
                    inner.clone(),
                    optional_ws(),
                )
                    .prop_map(|(q, s, b, w1, e, w2)| format!("{q} {s} as {b} {{{w1}{e}{w2}}}")),
            ];
            let link = (ws(), prop_oneof![Just("and"), Just("or")], ws())
                .prop_map(|(a, op, b)| format!("{a}{op}{b}"));
            (atom.clone(), proptest::collection::vec((link, atom), 0..4)).prop_map(
                |(first, rest)| {
                    rest.into_iter()
                        .fold(first, |acc, (link, atom)| acc + &link + &atom)
                },
            )
        })
        .boxed()
}

/// Fragments that exercise the parser's error paths when thrown together.
fn token_soup() -> BoxedStrategy<String> {
    let token = prop_oneof![
        proptest::sample::select(
            &[
                "and",
                "or",
                "not",
                "in",
                "contains",
                "matches",
                "is",
                "empty",
                "nil",
                "any",
                "all",
                "as",
                "==",
                "!=",
                "=~",
                "(",
                ")",
                "{",
                "}",
                ",",
                "_",
                "[",
                "]",
                ".",
                "\"",
                "`",
                "\\",
                "-",
                "0",
                "01",
                "1.5",
                "\"/a/b\"",
                "\"x\"",
                "`y`",
                "Meta[\"k\"]",
                "a.0",
                "\"\\u12\"",
                "\"\\xff\"",
                "é",
            ][..]
        )
        .prop_map(str::to_owned),
        bare_selector(),
        string_literal(),
    ];
    proptest::collection::vec((token, prop_oneof![Just(""), Just(" ")]), 0..24)
        .prop_map(|parts| parts.into_iter().map(|(t, w)| t + w).collect())
        .boxed()
}

fn node() -> serde_json::Value {
    serde_json::from_str(include_str!("fixtures/node.json"))
        .unwrap_or_else(|err| panic!("fixture is not valid JSON: {err}"))
}

/// For input that parses: the canonical text parses to the same filter, printing is stable, and
/// evaluation on a real document returns instead of panicking.
fn check_canonical(input: &str, doc: &serde_json::Value) -> Result<(), TestCaseError> {
    let Ok(filter) = Filter::parse(input) else {
        return Ok(());
    };
    let printed = filter.to_string();
    let reparsed = Filter::parse(&printed)
        .map_err(|err| TestCaseError::fail(format!("{printed:?} does not parse: {err}")))?;
    prop_assert_eq!(&reparsed, &filter, "canonical form {:?}", printed);
    prop_assert_eq!(reparsed.to_string(), printed);
    let _ = filter.matches(doc);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_expressions_parse_and_round_trip(input in expression()) {
        let doc = node();
        if let Err(err) = Filter::parse(&input) {
            // Nesting past the limit is the one legitimate failure for generated input.
            prop_assert!(
                err.to_string().contains("nests deeper"),
                "{:?} should parse: {}", input, err
            );
        }
        check_canonical(&input, &doc)?;
    }

    #[test]
    fn token_soup_never_panics(input in token_soup()) {
        check_canonical(&input, &node())?;
    }

    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        check_canonical(&input, &node())?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_canonical(&String::from_utf8_lossy(&bytes), &node())?;
    }
}
