#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Variables, their values from every source, locals, and functions.

use std::collections::BTreeMap;

use caravan_jobspec::{ParseOptions, parse, parse_variables_text};
use serde_json::{Value, json};

fn parse_json(src: &str, opts: &ParseOptions) -> Value {
    match parse(src, "input.hcl", opts) {
        Ok(job) => serde_json::to_value(job).unwrap(),
        Err(e) => panic!("parse failed:\n{e}"),
    }
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const DEFAULTS: &str = r#"
variables {
  region_var = "default_region"
}

variable "dc_var" {
  default = "default_dc"
}

job "example" {
  datacenters = [var.dc_var]
  region      = var.region_var
}
"#;

#[test]
fn defaults_and_every_way_to_set_them() {
    let d = parse_json(DEFAULTS, &ParseOptions::default());
    assert_eq!(d["Datacenters"], json!(["default_dc"]));
    assert_eq!(d["Region"], "default_region");

    let args = ParseOptions {
        variables: vars(&[("dc_var", "set_dc"), ("region_var", "set_region")]),
        ..Default::default()
    };
    let a = parse_json(DEFAULTS, &args);
    assert_eq!(a["Datacenters"], json!(["set_dc"]));
    assert_eq!(a["Region"], "set_region");

    let env = ParseOptions {
        env: vars(&[("NOMAD_VAR_dc_var", "env_dc"), ("HOME", "/root")]),
        ..Default::default()
    };
    assert_eq!(parse_json(DEFAULTS, &env)["Datacenters"], json!(["env_dc"]));

    let file = ParseOptions {
        var_files: vec!["dc_var = \"file_dc\"\nregion_var = \"file_region\"\n".to_owned()],
        ..Default::default()
    };
    let f = parse_json(DEFAULTS, &file);
    assert_eq!(f["Datacenters"], json!(["file_dc"]));
    assert_eq!(f["Region"], "file_region");

    // Precedence: defaults < environment < var files < -var.
    let all = ParseOptions {
        env: vars(&[
            ("NOMAD_VAR_dc_var", "env_dc"),
            ("NOMAD_VAR_region_var", "env_region"),
        ]),
        var_files: vec!["dc_var = \"file_dc\"\n".to_owned()],
        variables: vars(&[("dc_var", "arg_dc")]),
        ..Default::default()
    };
    let p = parse_json(DEFAULTS, &all);
    assert_eq!(p["Datacenters"], json!(["arg_dc"]));
    assert_eq!(p["Region"], "env_region");
}

#[test]
fn typed_variables() {
    let src = r#"
variable "count" {
  type    = number
  default = 1
}

variable "dcs" {
  type = list(string)
}

variable "labels" {
  type    = map(string)
  default = { team = "web" }
}

variable "canary" {
  type    = bool
  default = false
}

job "typed" {
  datacenters = var.dcs
  meta        = var.labels

  group "g" {
    count = var.count * 2

    update {
      canary = var.canary ? 1 : 0
    }
  }
}
"#;
    let opts = ParseOptions {
        variables: vars(&[("count", "3"), ("dcs", r#"["a", "b"]"#), ("canary", "true")]),
        ..Default::default()
    };
    let j = parse_json(src, &opts);
    assert_eq!(j["Datacenters"], json!(["a", "b"]));
    assert_eq!(j["Meta"], json!({"team": "web"}));
    assert_eq!(j["TaskGroups"][0]["Count"], 6);
    assert_eq!(j["TaskGroups"][0]["Update"]["Canary"], 1);
}

#[test]
fn locals_in_any_order_with_functions() {
    let src = r#"
variables {
  region_var = "default_region"
}

locals {
  # a local that depends on a later local
  full   = "${local.region}-${local.suffix}"
  region = "${var.region_var}.example"
}

locals {
  suffix = lower("PROD")
  dcs    = [for s in ["dc1", "dc2"] : upper(s)]
  image  = format("%s:%s", "redis", join(".", ["7", "2"]))
  ports  = { http = 8080, admin = 9000 }
}

job "example" {
  datacenters = local.dcs
  region      = local.full

  group "g" {
    network {
      port "http" {
        to = local.ports.http
      }
    }
    task "t" {
      driver = "docker"
      config {
        image = local.image
        args  = concat(["-a"], split(",", "b,c"))
        count = length(local.dcs)
        extra = jsonencode({ a = 1 })
        pick  = coalesce("", "x")
        big   = max(1, 7, 3)
        trim  = trimspace("  padded  ")
        repl  = replace("a-b-c", "-", "_")
        str   = tostring(5)
        num   = tonumber("12")
      }
    }
  }
}
"#;
    let j = parse_json(src, &ParseOptions::default());
    assert_eq!(j["Datacenters"], json!(["DC1", "DC2"]));
    assert_eq!(j["Region"], "default_region.example-prod");
    assert_eq!(
        j["TaskGroups"][0]["Networks"][0]["DynamicPorts"][0]["To"],
        8080
    );
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["Config"],
        json!({
            "args": ["-a", "b", "c"],
            "big": 7,
            "count": 2,
            "extra": "{\"a\":1}",
            "image": "redis:7.2",
            "num": 12,
            "pick": "x",
            "repl": "a_b_c",
            "str": "5",
            "trim": "padded"
        })
    );
}

#[test]
fn lookup_with_a_default_per_environment() {
    let src = r#"
variable "env" {
  description = "target environment for the job"
}

locals {
  environments = {
    prod    = { count = 20, dcs = ["prod-dc1", "prod-dc2"] },
    staging = { count = 3, dcs = ["dc1"] },
  }

  env = lookup(local.environments, var.env, { count = 0, dcs = [] })
}

job "job-webserver" {
  datacenters = local.env.dcs
  group "group-webserver" {
    count = local.env.count

    task "server" {
      driver = "docker"

      config {
        image = "hashicorp/http-echo"
        args  = ["-text", "Hello from ${var.env}"]
      }
    }
  }
}
"#;
    for (env, count, dcs) in [
        ("prod", 20, json!(["prod-dc1", "prod-dc2"])),
        ("staging", 3, json!(["dc1"])),
        ("unknown", 0, json!([])),
    ] {
        let opts = ParseOptions {
            variables: vars(&[("env", env)]),
            ..Default::default()
        };
        let j = parse_json(src, &opts);
        assert_eq!(j["Datacenters"], dcs, "{env}");
        assert_eq!(j["TaskGroups"][0]["Count"], count, "{env}");
        assert_eq!(
            j["TaskGroups"][0]["Tasks"][0]["Config"]["args"],
            json!(["-text", format!("Hello from {env}")])
        );
    }
}

#[test]
fn unknown_references_in_variables_stay_text() {
    let src = r#"
variables {
  region_var = "default"
}
job "example" {
  region = var.region_var
  meta {
    known_var   = "${var.region_var}"
    unknown_var = "${UNKNOWN}"
  }
}
"#;
    let opts = ParseOptions {
        variables: vars(&[("region_var", "aug")]),
        ..Default::default()
    };
    let j = parse_json(src, &opts);
    assert_eq!(
        j["Meta"],
        json!({"known_var": "aug", "unknown_var": "${UNKNOWN}"})
    );
}

#[test]
fn file_functions_when_allowed() {
    let dir = std::env::temp_dir().join(format!("caravan-jobspec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("motd.txt"), "hello\n").unwrap();
    let path = dir.join("job.nomad.hcl");
    let src = "job \"x\" {\n  meta {\n    motd   = file(\"motd.txt\")\n    exists = fileexists(\"nope.txt\")\n  }\n}\n";
    let opts = ParseOptions {
        allow_fs: true,
        ..Default::default()
    };
    let job = parse(src, path.to_str().unwrap(), &opts).unwrap();
    let meta = job.meta.unwrap();
    assert_eq!(meta["motd"], "hello\n");
    assert_eq!(meta["exists"], "false");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn variables_text_of_the_parse_endpoint() {
    let text = "image = \"redis:7\"\ncount = 3\ndebug = true\ndcs = [\"dc1\", \"dc2\"]\n";
    let parsed = parse_variables_text(text).unwrap();
    assert_eq!(
        parsed,
        vars(&[
            ("count", "3"),
            ("dcs", "[\"dc1\", \"dc2\"]"),
            ("debug", "true"),
            ("image", "redis:7"),
        ])
    );
    // The same values work as `-var`s and as a var file.
    let src = r#"
variable "image" {}
variable "count" { type = number }
variable "debug" { type = bool }
variable "dcs" { type = list(string) }
job "x" {
  datacenters = var.dcs
  group "g" {
    count = var.count
    task "t" {
      driver = "docker"
      config {
        image = var.image
        debug = var.debug
      }
    }
  }
}
"#;
    let as_args = parse_json(
        src,
        &ParseOptions {
            variables: parsed,
            ..Default::default()
        },
    );
    let as_file = parse_json(
        src,
        &ParseOptions {
            var_files: vec![text.to_owned()],
            ..Default::default()
        },
    );
    assert_eq!(as_args, as_file);
    assert_eq!(as_args["Datacenters"], json!(["dc1", "dc2"]));
    assert_eq!(as_args["TaskGroups"][0]["Count"], 3);
    assert_eq!(
        as_args["TaskGroups"][0]["Tasks"][0]["Config"]["debug"],
        true
    );

    let bad = parse_variables_text("a = var.b\n").unwrap_err();
    assert_eq!(
        bad.to_string(),
        "variables.hcl:1,5-10: Variables not allowed; Variables may not be used here."
    );
    let syntax = parse_variables_text("a = \n").unwrap_err();
    assert!(
        syntax.to_string().starts_with("variables.hcl:1,5-5: "),
        "{syntax}"
    );
}
