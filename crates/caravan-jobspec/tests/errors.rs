#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every kind of error a jobspec can have, with its position, printed as HCL prints it.

use std::collections::BTreeMap;

use caravan_jobspec::{ParseOptions, parse};

fn err(src: &str) -> String {
    err_with(src, &ParseOptions::default())
}

fn err_with(src: &str, opts: &ParseOptions) -> String {
    match parse(src, "input.hcl", opts) {
        Ok(job) => panic!("expected an error, got {job:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_argument() {
    let src = "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      foo = 1\n    }\n  }\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:4,7-10: Unsupported argument; An argument named \"foo\" is not expected here."
    );
}

#[test]
fn unsupported_argument_with_suggestion() {
    let src =
        "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      drivr = \"docker\"\n    }\n  }\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:4,7-12: Unsupported argument; An argument named \"drivr\" is not expected here. Did you mean \"driver\"?"
    );
}

#[test]
fn argument_where_a_block_is_expected() {
    let src = "job \"x\" {\n  group \"g\" {\n    restart = {}\n  }\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:3,5-12: Unsupported argument; An argument named \"restart\" is not expected here. Did you mean to define a block of type \"restart\"?"
    );
}

#[test]
fn unsupported_block_type() {
    let src = "job \"x\" {\n  groop \"g\" {\n  }\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:2,3-8: Unsupported block type; Blocks of type \"groop\" are not expected here. Did you mean \"group\"?"
    );
}

#[test]
fn block_where_an_argument_is_expected() {
    let src = "job \"x\" {\n  group \"g\" {\n    count {\n    }\n  }\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:3,5-10: Unsupported block type; Blocks of type \"count\" are not expected here. Did you mean to define argument \"count\"? If so, use the equals sign to assign it a value."
    );
}

#[test]
fn top_level_attribute() {
    assert_eq!(
        err("name = \"x\"\njob \"x\" {}\n"),
        "input.hcl:1,1-5: Unsupported argument; An argument named \"name\" is not expected here."
    );
}

#[test]
fn missing_and_duplicate_job_blocks() {
    assert_eq!(
        err("variable \"x\" {\n  default = 1\n}\n"),
        "<nil>: Missing job block; A job block is required"
    );
    assert_eq!(
        err("job \"a\" {}\njob \"b\" {}\n"),
        "input.hcl:2,1-8: Duplicate job block; Only one block of type \"job\" is allowed. Previous definition was at input.hcl:1,1-8."
    );
}

#[test]
fn missing_and_extra_labels() {
    assert_eq!(
        err("job \"x\" {\n  group {\n  }\n}\n"),
        "input.hcl:2,3-8: Missing name for group; All group blocks must have 1 labels (name)."
    );
    assert_eq!(
        err("job \"x\" {\n  group \"g\" {\n    restart \"r\" {}\n  }\n}\n"),
        "input.hcl:3,13-16: Extraneous label for restart; No labels are expected for restart blocks."
    );
}

#[test]
fn duplicate_singleton_block() {
    let src = "job \"x\" {\n  group \"g\" {\n    restart {}\n    restart {}\n  }\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:4,5-12: Duplicate restart block; Only one restart block is allowed. Another was defined at input.hcl:3,5-12."
    );
}

#[test]
fn attribute_set_twice() {
    let src = "job \"x\" {\n  type = \"batch\"\n  type = \"service\"\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:3,3-7: Attribute redefined; The argument \"type\" was already set. Each argument may be set only once."
    );
}

#[test]
fn syntax_errors_point_at_the_token() {
    assert_eq!(
        err("job \"x\" {\n  group \"g\" {\n    count = \n  }\n}\n"),
        "input.hcl:3,13-13: Invalid expression; Expected `\"`, `[`, `{`, `-`, `!`, `(`, `_`, `<`, letter or digit."
    );
    assert_eq!(
        err("invalid{hcl"),
        "input.hcl:1,11-12: Invalid attribute; Expected `=`."
    );
}

#[test]
fn wrong_value_types() {
    assert_eq!(
        err("job \"x\" {\n  group \"g\" {\n    count = \"three\"\n  }\n}\n"),
        "input.hcl:3,13-20: Unsuitable value type; Unsuitable value: a number is required"
    );
    assert_eq!(
        err("job \"x\" {\n  datacenters = \"dc1\"\n}\n"),
        "input.hcl:2,17-22: Unsuitable value type; Unsuitable value: list of string required"
    );
    assert_eq!(
        err("job \"x\" {\n  affinity {\n    weight = 200\n  }\n}\n"),
        "input.hcl:3,14-17: Unsuitable value type; Unsuitable value: value must be a whole number, between -128 and 127"
    );
    assert_eq!(
        err("job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      env = [\"a\"]\n    }\n  }\n}\n"),
        "input.hcl:4,13-18: Unsuitable value type; Unsuitable value: map of string required"
    );
}

#[test]
fn bad_durations() {
    assert_eq!(
        err("job \"x\" {\n  group \"g\" {\n    shutdown_delay = \"10\"\n  }\n}\n"),
        "input.hcl:3,22-26: Unsuitable value type; Unsuitable duration value: time: missing unit in duration \"10\""
    );
    assert_eq!(
        err("job \"x\" {\n  update {\n    stagger = \"abc\"\n  }\n}\n"),
        "input.hcl:3,15-20: Unsuitable value type; Unsuitable duration value: time: invalid duration \"abc\""
    );
}

#[test]
fn unset_variable() {
    let src = "variable \"image\" {\n  type = string\n}\n\njob \"x\" {}\n";
    assert_eq!(
        err(src),
        "input.hcl:1,1-17: Unset variable \"image\"; A used variable must be set or have a default value; see https://www.nomadproject.io/docs/job-specification/hcl2/variables for details."
    );
}

#[test]
fn undefined_variable_attribute() {
    let src = "variable \"a\" {\n  default = 1\n}\njob \"x\" {\n  region = var.b\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:5,15-17: Unsupported attribute; This object does not have an attribute named \"b\"."
    );
}

#[test]
fn variable_values_of_the_wrong_type() {
    let src = "variable \"n\" {\n  type = number\n}\njob \"x\" {}\n";
    let opts = ParseOptions {
        variables: BTreeMap::from([("n".to_owned(), "many".to_owned())]),
        ..Default::default()
    };
    assert_eq!(
        err_with(src, &opts),
        "<value for var.n from arguments>:1,1-5: Invalid argument value for -var variable; The received arg value for n is not compatible with the variable's type constraint: a number is required."
    );
    let bad_default = "variable \"n\" {\n  type    = number\n  default = \"x\"\n}\njob \"x\" {}\n";
    assert_eq!(
        err(bad_default),
        "input.hcl:3,13-16: Invalid default value for variable; This default value is not compatible with the variable's type constraint: a number is required."
    );
}

#[test]
fn undeclared_variables_only_fail_when_strict() {
    let src = "job \"x\" {}\n";
    let lax = ParseOptions {
        variables: BTreeMap::from([("nope".to_owned(), "1".to_owned())]),
        var_files: vec!["other = 2\n".to_owned()],
        ..Default::default()
    };
    assert!(parse(src, "input.hcl", &lax).is_ok());
    let strict = ParseOptions {
        strict: true,
        ..lax
    };
    assert_eq!(
        err_with(src, &strict),
        "variables.hcl:1,1-10: Undefined variable; A \"other\" variable was set but was not found in known variables. To declare variable \"other\", place this block in your job files\n\
         <nil>: Undefined -var variable; A \"nope\" variable was passed in the command line but was not found in known variables. To declare variable \"nope\", place this block in your job file"
    );
}

#[test]
fn variable_validation() {
    let src = r#"variable "count" {
  type    = number
  default = 0
  validation {
    condition     = var.count > 0
    error_message = "Count must be positive."
  }
}
job "x" {}
"#;
    assert_eq!(
        err(src),
        "input.hcl:3,13-14: Invalid value for default variable; Count must be positive.\n\nThis was checked by the validation rule at input.hcl:4,3-13."
    );
}

#[test]
fn file_functions_are_disabled_by_default() {
    let src = "job \"x\" {\n  region = file(\"/etc/hostname\")\n}\n";
    assert_eq!(
        err(src),
        "input.hcl:2,12-33: Error in function call; Call to function \"file\" failed: filesystem function disabled."
    );
}

#[test]
fn unknown_function_and_bad_arguments() {
    assert_eq!(
        err("job \"x\" {\n  region = nope(1)\n}\n"),
        "input.hcl:2,12-16: Call to unknown function; There is no function named \"nope\"."
    );
    assert_eq!(
        err("job \"x\" {\n  region = upper()\n}\n"),
        "input.hcl:2,12-17: Not enough function arguments; Function \"upper\" expects 1 argument(s)."
    );
}

#[test]
fn every_problem_is_reported() {
    let src = "job \"x\" {\n  foo = 1\n  group \"g\" {\n    bar = 2\n  }\n}\n";
    let e = parse(src, "input.hcl", &ParseOptions::default()).unwrap_err();
    assert_eq!(e.diagnostics.len(), 2);
    assert_eq!(
        e.to_string(),
        "input.hcl:2,3-6: Unsupported argument; An argument named \"foo\" is not expected here.\n\
         input.hcl:4,5-8: Unsupported argument; An argument named \"bar\" is not expected here."
    );
}

#[test]
fn scaling_rules() {
    let missing_max =
        "job \"x\" {\n  group \"g\" {\n    scaling {\n      type = \"horizontal\"\n    }\n  }\n}\n";
    assert_eq!(
        err(missing_max),
        "input.hcl:3,5-12: Missing required argument; The argument \"max\" is required, but no definition was found."
    );
    let bad_label = "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      scaling \"disk\" {\n        max = 1\n      }\n    }\n  }\n}\n";
    assert_eq!(
        err(bad_label),
        "input.hcl:4,15-21: Invalid scaling policy name; scaling policy name must be \"cpu\" or \"mem\""
    );
}

#[test]
fn json_jobspecs_are_refused() {
    assert_eq!(
        err("{\"Job\": {}}"),
        "input.hcl:1,1-2: Unsupported jobspec format; JSON jobspecs are not supported; submit JSON jobs to /v1/jobs instead."
    );
}
