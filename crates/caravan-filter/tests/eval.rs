//! Evaluation against the "Read Node" sample response of the Nomad API docs, plus small
//! documents for the corners the sample does not reach.

use caravan_filter::{EvalError, Filter};
use serde_json::{Value, json};

fn node() -> Value {
    serde_json::from_str(include_str!("fixtures/node.json"))
        .unwrap_or_else(|err| panic!("fixture is not valid JSON: {err}"))
}

fn eval(expr: &str, doc: &Value) -> Result<bool, EvalError> {
    Filter::parse(expr)
        .unwrap_or_else(|err| panic!("{expr:?} should parse: {err}"))
        .matches(doc)
}

#[track_caller]
fn check(doc: &Value, cases: &[(&str, bool)]) {
    for (expr, expected) in cases {
        match eval(expr, doc) {
            Ok(result) => assert_eq!(result, *expected, "{expr}"),
            Err(err) => panic!("{expr:?} should evaluate: {err}"),
        }
    }
}

#[track_caller]
fn fails(doc: &Value, expr: &str, message: &str) {
    match eval(expr, doc) {
        Ok(result) => panic!("{expr:?} should fail, got {result}"),
        Err(err) => assert_eq!(err.to_string(), message, "{expr}"),
    }
}

#[test]
fn equality_on_strings() {
    check(
        &node(),
        &[
            (r#"Status == "ready""#, true),
            ("Status == ready", true),
            ("Status == `ready`", true),
            (r#"Status != "ready""#, false),
            (r#"Status == "Ready""#, false),
            (r#"NodeClass == """#, true),
            (r#"ID == "1ac61e33-a465-2ace-f63f-cffa1285e7eb""#, true),
            (r#"Meta["connect.log_level"] == "info""#, true),
            (r#"Meta["connect.log_level"] != "debug""#, true),
            (r#"Attributes["os.name"] == "nixos""#, true),
            (r#"Attributes["os.name"] == "ubuntu""#, false),
            (r#""/Attributes/os.name" == "nixos""#, true),
            (
                r#"Attributes["os.version"] == "\"19.03.173017.85f820d6e41 (Koi)\"""#,
                true,
            ),
            (
                r#"Attributes["unique.network.ip-address"] == "127.0.0.1""#,
                true,
            ),
            (
                r#"Drivers.docker.Attributes["driver.docker.version"] == "18.09.6""#,
                true,
            ),
            ("Links.consul == dc1.mew", true),
            // String fields compare as strings, even when the literal is a number.
            (r#"Attributes["cpu.numcores"] == 8"#, true),
            (r#"Attributes["cpu.numcores"] == 8.0"#, false),
        ],
    );
}

#[test]
fn equality_coerces_numbers_and_bools() {
    check(
        &node(),
        &[
            ("CreateIndex == 6", true),
            ("CreateIndex == 6.0", true),
            ("CreateIndex == \"6\"", true),
            ("CreateIndex != 7", true),
            ("ModifyIndex == -9", false),
            ("StatusUpdatedAt == 1566814982", true),
            ("NodeResources.Cpu.CpuShares == 32000", true),
            ("Drain == false", true),
            ("Drain == False", true),
            ("Drain == f", true),
            ("Drain == 0", true),
            ("Drain != 1", true),
            ("TLSEnabled == TRUE", false),
            ("Drivers.docker.Healthy == true", true),
            ("HostVolumes.certificates.ReadOnly == t", true),
        ],
    );
    let doc = json!({
        "Big": 18446744073709551615u64,
        "Submit": 1645230445788556000u64,
        "Neg": -3,
        "Ratio": 0.5,
        "Zero": 0.0,
    });
    check(
        &doc,
        &[
            ("Big == 18446744073709551615", true),
            ("Big == 18446744073709551614", false),
            // Exact integers: these differ by less than a float can tell apart.
            ("Submit == 1645230445788556000", true),
            ("Submit == 1645230445788556001", false),
            ("Neg == -3", true),
            ("Neg == -3.0", true),
            ("Ratio == 0.5", true),
            ("Ratio == `.5`", true),
            ("Ratio == `5e-1`", true),
            ("Ratio != 0.25", true),
            ("Zero == 0", true),
        ],
    );
}

#[test]
fn coercion_failures_are_errors() {
    let doc = node();
    fails(
        &doc,
        "CreateIndex == abc",
        r#"error getting match value in expression: cannot parse "abc" as a number"#,
    );
    fails(
        &doc,
        "Drain == yes",
        r#"error getting match value in expression: cannot parse "yes" as a bool"#,
    );
    fails(
        &doc,
        "Drain != yes",
        r#"error getting match value in expression: cannot parse "yes" as a bool"#,
    );
}

#[test]
fn equality_on_objects_and_arrays_is_an_error() {
    let doc = node();
    for expr in [
        r#"Meta == "x""#,
        r#"Events != "x""#,
        r#""/NodeResources" == "x""#,
    ] {
        fails(
            &doc,
            expr,
            "unable to find suitable primitive comparison function for matching",
        );
    }
}

#[test]
fn in_and_contains() {
    check(
        &node(),
        &[
            // Strings: substring.
            (r#""mew" in Name"#, true),
            (r#""ew" in Name"#, true),
            (r#"Name contains "me""#, true),
            (r#"Name not contains "xyz""#, true),
            (r#""SIGKILL" in Attributes["os.signals"]"#, true),
            (r#""" in Name"#, true),
            // Objects: key presence.
            (r#""connect.log_level" in Meta"#, true),
            (r#"Meta contains "connect.sidecar_image""#, true),
            (r#""info" in Meta"#, false),
            (r#""docker" in Drivers"#, true),
            (r#""podman" not in Drivers"#, true),
            (r#"HostVolumes contains "prod-mysql-a""#, true),
        ],
    );
    let doc = json!({
        "Datacenters": ["dc1", "dc2"],
        "Ports": [8080, 9090],
        "Flags": [true],
        "Sparse": [null, "x"],
        "Empty": [],
    });
    check(
        &doc,
        &[
            (r#""dc2" in Datacenters"#, true),
            (r#"Datacenters contains "dc1""#, true),
            (r#"Datacenters contains "dc""#, false),
            (r#""dc3" not in Datacenters"#, true),
            ("8080 in Ports", true),
            ("8080.0 in Ports", true),
            ("80 in Ports", false),
            ("Ports not contains 1", true),
            ("true in Flags", true),
            ("F in Flags", false),
            ("x in Sparse", true),
            ("x in Empty", false),
            ("x not in Empty", true),
        ],
    );
    fails(
        &doc,
        "abc in Ports",
        r#"error getting match value in expression: cannot parse "abc" as a number"#,
    );
}

#[test]
fn in_on_scalars_and_nested_arrays_is_an_error() {
    let doc = node();
    fails(
        &doc,
        "1 in CreateIndex",
        r#"cannot perform in/contains operations on type number for selector: "CreateIndex""#,
    );
    fails(
        &doc,
        "Drivers.docker.Healthy contains true",
        r#"cannot perform in/contains operations on type bool for selector: "Drivers.docker.Healthy""#,
    );
    fails(
        &doc,
        r#""lo" not in NodeResources.Networks"#,
        r#"unable to find suitable primitive comparison function for "in" comparison on elements of type object"#,
    );
}

#[test]
fn emptiness_and_nil() {
    check(
        &node(),
        &[
            ("NodeClass is empty", true),
            ("Name is not empty", true),
            ("Meta is not empty", true),
            ("Events is not empty", true),
            ("Drivers.docker.Attributes is not empty", true),
            // null reads as empty and nil.
            ("Drivers.qemu.Attributes is empty", true),
            ("Drivers.qemu.Attributes is nil", true),
            ("DrainStrategy is nil", true),
            ("DrainStrategy is not nil", false),
            ("Meta is nil", false),
            ("Meta is not nil", true),
            ("NodeClass is nil", false),
            ("Drain is nil", false),
        ],
    );
    let doc = json!({"Obj": {}, "Arr": [], "Str": ""});
    check(
        &doc,
        &[
            ("Obj is empty", true),
            ("Arr is empty", true),
            ("Str is empty", true),
            ("Obj is nil", false),
            ("Arr is not nil", true),
        ],
    );
    fails(
        &node(),
        "CreateIndex is empty",
        r#"cannot perform is empty operations on type number for selector: "CreateIndex""#,
    );
    fails(
        &node(),
        "Drain is not empty",
        r#"cannot perform is empty operations on type bool for selector: "Drain""#,
    );
}

#[test]
fn regex_matching() {
    check(
        &node(),
        &[
            (r#"Name matches "^m.w$""#, true),
            (r#"Name matches "e""#, true), // unanchored, like Go's MatchString
            (r#"Name not matches "^x""#, true),
            (r#"Attributes["cpu.modelname"] matches `i7-\d{4}U`"#, true),
            (r#"Attributes["kernel.version"] matches "^4\\.19\\.""#, true),
            (r#"ID matches "(?i)^1AC61E33""#, true),
            (
                r#"Meta["connect.sidecar_image"] matches "envoy:v1\\.1[0-9]""#,
                true,
            ),
        ],
    );
    fails(
        &node(),
        r#"CreateIndex matches "6""#,
        r#"cannot perform matches operations on type number for selector: "CreateIndex""#,
    );
    fails(
        &node(),
        r#"Meta not matches "x""#,
        r#"cannot perform matches operations on type object for selector: "Meta""#,
    );
}

#[test]
fn array_index() {
    check(
        &node(),
        &[
            (r#"NodeResources.Networks.0.Device == "lo""#, true),
            (r#"NodeResources.Networks.1.IP == "::1""#, true),
            (r#"NodeResources.Networks["1"].CIDR == "::1/128""#, true),
            (r#""/NodeResources/Networks/0/MBits" == 1000"#, true),
            (r#"Events.0.Message == "Node registered""#, true),
            // Out of range and non-numeric indexes are missing.
            (r#"NodeResources.Networks.2.IP == "::1""#, false),
            (r#"NodeResources.Networks.2.IP != "::1""#, true),
            (r#"NodeResources.Networks.first.IP is empty"#, true),
        ],
    );
}

#[test]
fn missing_values_follow_the_table() {
    // A missing key, a walk through null, a walk into a scalar: all "missing".
    for selector in [
        r#"Meta["nope"]"#,
        "NoSuchField",
        "DrainStrategy.Deadline",
        "Drivers.qemu.Attributes.foo",
        "Name.First",
        "Meta.connect",
    ] {
        let cases = [
            (format!("{selector} == x"), false),
            (format!("{selector} != x"), true),
            (format!("x in {selector}"), false),
            (format!("x not in {selector}"), true),
            (format!("{selector} contains x"), false),
            (format!("{selector} not contains x"), true),
            (format!("{selector} matches x"), false),
            (format!("{selector} not matches x"), true),
            (format!("{selector} is empty"), true),
            (format!("{selector} is not empty"), false),
            (format!("{selector} is nil"), true),
            (format!("{selector} is not nil"), false),
        ];
        for (expr, expected) in cases {
            assert_eq!(eval(&expr, &node()).unwrap(), expected, "{expr}");
        }
    }
    // A null field compares like a missing one.
    check(
        &node(),
        &[
            (r#"DrainStrategy == """#, false),
            (r#"DrainStrategy != """#, true),
            ("NodeResources.Devices == 1", false),
        ],
    );
}

#[test]
fn boolean_logic_and_precedence() {
    let doc = node();
    check(
        &doc,
        &[
            (r#"Status == "ready" and Drain == false"#, true),
            (r#"Status == "ready" and Drain == true"#, false),
            (r#"Status == "down" or Drain == false"#, true),
            (r#"not Status == "down""#, true),
            (r#"not not Status == "ready""#, true),
            // (true and (not true)) or false
            (
                r#"Status == ready and not Drain == false or Name == x"#,
                false,
            ),
            // true and not (true or false)
            (
                r#"Status == ready and not (Drain == false or Name == x)"#,
                false,
            ),
            // (false and ...) or true
            (r#"Status == down and Drain == false or Name == mew"#, true),
            // false and (... or true)
            (
                r#"Status == down and (Drain == false or Name == mew)"#,
                false,
            ),
            (
                r#"(Status == ready or Status == initializing) and SchedulingEligibility == eligible"#,
                true,
            ),
        ],
    );
}

#[test]
fn short_circuit_skips_errors_on_the_right() {
    let doc = node();
    check(
        &doc,
        &[
            (r#"Status == "ready" or Meta == "x""#, true),
            (r#"Status == "down" and Meta == "x""#, false),
        ],
    );
    assert!(eval(r#"Status == "ready" and Meta == "x""#, &doc).is_err());
}

#[test]
fn collections() {
    let doc = node();
    check(
        &doc,
        &[
            // Arrays: a lone name is the element.
            (r#"any Events as e { e.Subsystem == "Cluster" }"#, true),
            (r#"all Events as e { e.Subsystem == "Drain" }"#, false),
            (r#"any NodeResources.Networks as n { n.IP == "::1" }"#, true),
            (
                r#"all NodeResources.Networks as n { n.Device == "lo" and n.MBits == 1000 }"#,
                true,
            ),
            (
                r#"any NodeResources.Networks as i, n { i == 1 and n.IP == "::1" }"#,
                true,
            ),
            (r#"any NodeResources.Networks as i, _ { i == 2 }"#, false),
            (
                r#"all NodeResources.Networks as _, n { "/n/Mode" is empty }"#,
                true,
            ),
            // Objects: a lone name is the key; k, v is key and value.
            (r#"any Meta as k { k == "connect.log_level" }"#, true),
            (r#"any Meta as k { k == "info" }"#, false),
            (
                r#"any Meta as k, v { k matches "^connect\\." and v == "info" }"#,
                true,
            ),
            (r#"any Meta as _, v { v == "info" }"#, true),
            (r#"all Meta as k, _ { k matches "^connect\\." }"#, true),
            (
                r#"any Drivers as name, d { name == "docker" and d.Healthy == true }"#,
                true,
            ),
            (r#"all Drivers as _, d { d.Detected == true }"#, false),
            (
                r#"any Drivers as _, d { d.Attributes["driver.mock"] == "true" }"#,
                true,
            ),
            (r#"all HostVolumes as _, v { v.Path matches "^/" }"#, true),
            // Nested, with the outer binding visible and document fields still reachable.
            (
                r#"any Drivers as dn, d { any d.Attributes as k { k == "driver.docker.version" and dn == docker and Status == ready } }"#,
                true,
            ),
            // Missing or null: any is false, all is true.
            ("any Nope as v { v == 1 }", false),
            ("all Nope as v { v == 1 }", true),
            ("any Drivers.qemu.Attributes as k { k == 1 }", false),
            ("all DrainStrategy as k { k == 1 }", true),
            // Keys and indexes have nothing below them.
            ("any Meta as k { k.x is nil }", true),
            ("not any Meta as k { k.x is not nil }", true),
        ],
    );
    let empty = json!({"Arr": [], "Obj": {}});
    check(
        &empty,
        &[
            ("any Arr as v { v == 1 }", false),
            ("all Arr as v { v == 1 }", true),
            ("any Obj as k { k == 1 }", false),
            ("all Obj as k { k == 1 }", true),
        ],
    );
    fails(
        &doc,
        "any Name as v { v == 1 }",
        "Name is not a list or a map",
    );
    fails(
        &doc,
        "all CreateIndex as v { v == 1 }",
        "CreateIndex is not a list or a map",
    );
    // Errors inside the body abort the evaluation.
    fails(
        &doc,
        "any Events as e { e == 1 }",
        "unable to find suitable primitive comparison function for matching",
    );
}

#[test]
fn root_selector_and_non_object_documents() {
    check(
        &json!("hello"),
        &[(r#""" == "hello""#, true), (r#""ell" in """#, true)],
    );
    check(
        &json!(null),
        &[("Anything is nil", true), (r#""" is empty"#, true)],
    );
    check(
        &json!([1, 2]),
        &[(r#""/0" == 2"#, false), (r#""/1" == 2"#, true)],
    );
}

#[test]
fn filters_are_reusable_across_documents_and_threads() {
    let filter = Filter::parse(r#"Status == "ready" and "docker" in Drivers"#).unwrap();
    let ready = node();
    let mut down = node();
    down["Status"] = json!("down");
    let handles: Vec<_> = [ready, down]
        .into_iter()
        .map(|doc| {
            let filter = filter.clone();
            std::thread::spawn(move || filter.matches(&doc).unwrap())
        })
        .collect();
    let results: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results, vec![true, false]);
}

#[allow(clippy::unwrap_used)]
mod schema {
    use caravan_filter::{EvalError, Filter, MapPaths};
    use serde_json::json;

    const NODE_MAPS: MapPaths = MapPaths(&[
        &["Attributes"],
        &["Meta"],
        &["Drivers"],
        &["Drivers", "*", "Attributes"],
        &["Events", "*", "Details"],
    ]);

    fn node() -> serde_json::Value {
        json!({
            "Status": "ready",
            "Attributes": {"os.name": "debian"},
            "Meta": {},
            "DrainStrategy": null,
            "Drivers": {"raw_exec": {"Detected": true, "Attributes": {"driver.raw_exec": "1"}}},
            "Events": [{"Message": "Node registered", "Details": null}],
        })
    }

    fn eval(expr: &str) -> Result<bool, EvalError> {
        Filter::parse(expr).unwrap().matches_in(&node(), &NODE_MAPS)
    }

    #[test]
    fn unknown_struct_fields_are_errors() {
        let err = eval(r#"status == "ready""#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error finding value in datum: /status at part 0: couldn't find struct field with name \"status\""
        );
        let err = eval(r#"Drivers.raw_exec.Detcted == true"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("/Drivers/raw_exec/Detcted at part 2"),
            "{err}"
        );
        let err = eval(r#"any Events as e { e.Mesage == "x" }"#).unwrap_err();
        assert!(matches!(err, EvalError::NoSuchField { .. }), "{err}");
    }

    #[test]
    fn missing_map_keys_and_nulls_are_not() {
        assert!(!eval(r#"Meta.rack == "r1""#).unwrap());
        assert!(eval(r#"Attributes["kernel.name"] is empty"#).unwrap());
        assert!(!eval(r#"Drivers.docker.Detected == true"#).unwrap());
        assert!(eval(r#"Drivers.raw_exec.Attributes["driver.raw_exec"] == "1""#).unwrap());
        // Walking through a nil pointer is "missing", not an error.
        assert!(!eval("DrainStrategy.Deadline == 5").unwrap());
        assert!(eval(r#"any Events as e { e.Details.foo is empty }"#).unwrap());
        assert!(eval(r#"Status == "ready""#).unwrap());
    }
}
