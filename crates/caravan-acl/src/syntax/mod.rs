//! The rules text as a tree, the shape HCL1 gives it: an object list of items, each with one or
//! more keys and a value. Both input forms end up here: native HCL1 (`hcl.rs`) and the JSON form
//! HCL1 accepts (`json.rs`, which flattens nested objects into multi-key items as HCL1 does).

mod hcl;
mod json;
mod unquote;

/// One `keys... = value` or `keys... { ... }` entry. Keys are already unquoted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub keys: Vec<String>,
    pub val: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A string, number, bool or heredoc, as the text the decoder sees (numbers keep their
    /// source text, JSON `null` is the empty string, as in HCL1).
    Literal(String),
    List(Vec<Node>),
    Object(Vec<Item>),
}

/// Deeper nesting is refused rather than risking the stack; real policies nest four levels.
const MAX_DEPTH: usize = 64;

/// A syntax error, rendered as HCL1 renders its own (`At line:col: message`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError(pub String);

/// Parses rules as HCL1 does: JSON when the first non-space character is `{`, else native HCL.
pub(crate) fn parse(rules: &str) -> Result<Vec<Item>, SyntaxError> {
    if rules.trim_start().starts_with('{') {
        json::parse(rules)
    } else {
        hcl::parse(rules)
    }
}

/// HCL1 matches keys to field names with `strings.EqualFold`; our field names are ASCII, so
/// only the two non-ASCII letters that fold onto ASCII ones need care.
pub(crate) fn key_matches(key: &str, field: &str) -> bool {
    let mut a = key.chars().map(|c| match c {
        '\u{017F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    let mut b = field.chars().map(|c| c.to_ascii_lowercase());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn lit(s: &str) -> Node {
        Node::Literal(s.to_owned())
    }

    fn item(keys: &[&str], val: Node) -> Item {
        Item {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            val,
        }
    }

    #[test]
    fn hcl_blocks_attributes_and_lists() {
        let items = parse(
            "# comment\nnamespace \"default\" {\n  policy = \"read\" // trailing\n  capabilities = [\"a\", \"b\",]\n}\n/* block */ agent { policy = \"write\" }",
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                item(
                    &["namespace", "default"],
                    Node::Object(vec![
                        item(&["policy"], lit("read")),
                        item(&["capabilities"], Node::List(vec![lit("a"), lit("b")])),
                    ])
                ),
                item(
                    &["agent"],
                    Node::Object(vec![item(&["policy"], lit("write"))])
                ),
            ]
        );
    }

    #[test]
    fn hcl_one_line_forms_that_hcl2_refuses() {
        // Several items on one line, nested one-line blocks, repeated keys: all HCL1.
        let items = parse(
            r#"namespace "ns" { variables { path "a" { capabilities = ["read"] }}} namespace "b" { policy = "read" policy = "write" }"#,
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1],
            item(
                &["namespace", "b"],
                Node::Object(vec![
                    item(&["policy"], lit("read")),
                    item(&["policy"], lit("write")),
                ])
            )
        );
    }

    #[test]
    fn hcl_literals_keep_their_text() {
        let items =
            parse("a = 1\nb = -2.5e3\nc = true\nd = 0x1F\ne = \"x\\ty\\u00e9${ \"q\" }\"").unwrap();
        let vals: Vec<_> = items.into_iter().map(|i| i.val).collect();
        assert_eq!(
            vals,
            vec![
                lit("1"),
                lit("-2.5e3"),
                lit("true"),
                lit("0x1F"),
                lit("x\ty\u{e9}${ \"q\" }")
            ]
        );
    }

    #[test]
    fn hcl_heredocs() {
        let items = parse("a = <<EOF\nread\nEOF\nb = <<-EOT\n    x\n      y\n    EOT\n").unwrap();
        assert_eq!(items[0].val, lit("read\n"));
        assert_eq!(items[1].val, lit("x\n  y\n"));
        // HCL1 wants a newline after the closing anchor.
        assert!(parse("a = <<EOF\nread\nEOF").is_err());
    }

    #[test]
    fn hcl_errors_carry_positions() {
        let err = |s: &str| parse(s).unwrap_err().0;
        assert_eq!(
            err("namespace \"\\500\" {}"),
            "invalid acl policy: unquote \"\\500\" err: invalid syntax"
        );
        assert_eq!(err("namespace \"x"), "At 1:13: literal not terminated");
        assert_eq!(err("a = read"), "At 1:5: Unknown token: IDENT read");
        assert_eq!(
            err("namespace"),
            "At 1:10: key 'namespace' expected start of object ('{') or assignment ('=')"
        );
        assert_eq!(
            err("a b = 1"),
            "At 1:5: nested object expected: LBRACE got: ASSIGN"
        );
        assert_eq!(
            err("}"),
            "At 1:1: expected: IDENT | STRING | ASSIGN | LBRACE got: RBRACE"
        );
        assert_eq!(
            err("a { b = 1"),
            "At 1:10: object expected closing RBRACE got: EOF"
        );
        assert_eq!(
            err("a = [1 2]"),
            "At 1:8: error parsing list, expected comma or list end, got: NUMBER"
        );
        assert_eq!(err("a = @"), "At 1:5: illegal char");
        assert_eq!(err("/* x"), "At 1:5: comment not terminated");
    }

    #[test]
    fn hcl_depth_is_bounded() {
        let deep = format!("a = {}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep).unwrap_err().0.contains("nesting"));
        let deep = format!("{}1{}", "a {".repeat(10_000), "}".repeat(10_000));
        assert!(parse(&deep).unwrap_err().0.contains("nesting"));
    }

    #[test]
    fn json_flattens_nested_objects_like_hcl1() {
        let items = parse(
            r#"{"namespace": {"default": {"policy": "read"}, "other": {}}, "agent": {"policy": "write"}}"#,
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                item(
                    &["namespace", "default"],
                    Node::Object(vec![item(&["policy"], lit("read"))])
                ),
                item(&["namespace", "other"], Node::Object(vec![])),
                item(
                    &["agent"],
                    Node::Object(vec![item(&["policy"], lit("write"))])
                ),
            ]
        );
    }

    #[test]
    fn json_lists_of_objects_repeat_the_key() {
        let items = parse(
            r#"{"namespace": [{"a": {"policy": "read"}}, {"b": {"capabilities": ["x", 1, true]}},],}"#,
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                item(
                    &["namespace", "a"],
                    Node::Object(vec![item(&["policy"], lit("read"))])
                ),
                item(
                    &["namespace", "b"],
                    Node::Object(vec![item(
                        &["capabilities"],
                        Node::List(vec![lit("x"), lit("1")])
                    )])
                ),
            ]
        );
    }

    #[test]
    fn json_errors() {
        let err = |s: &str| parse(s).unwrap_err().0;
        assert_eq!(err("{\"a\" 1}"), "expected: STRING got: NUMBER");
        assert_eq!(err("{\"a\": ?}"), "1:7: illegal char: ?");
        assert_eq!(
            err("{\"a\": \"\\/\"}"),
            "invalid acl policy: unquote \"\\/\" err: invalid syntax"
        );
        let deep = format!(
            "{{\"a\": {}1{}}}",
            "{\"a\": ".repeat(10_000),
            "}".repeat(10_000)
        );
        assert!(err(&deep).contains("nesting"));
    }

    #[test]
    fn keys_fold_like_go() {
        assert!(key_matches("Policy", "policy"));
        assert!(key_matches("NAMESPACE", "namespace"));
        assert!(key_matches("name\u{017F}pace", "namespace"));
        assert!(!key_matches("node_pool", "node"));
        assert!(!key_matches("polic", "policy"));
    }
}
