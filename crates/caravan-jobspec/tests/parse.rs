#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Realistic jobspecs through `parse`, checked against the JSON Nomad produces for them
//! (key fields, as golden values).

use caravan_jobspec::{ParseOptions, parse};
use serde_json::{Value, json};

fn parse_json(src: &str) -> Value {
    parse_json_with(src, &ParseOptions::default())
}

fn parse_json_with(src: &str, opts: &ParseOptions) -> Value {
    match parse(src, "input.hcl", opts) {
        Ok(job) => serde_json::to_value(job).unwrap(),
        Err(e) => panic!("parse failed:\n{e}"),
    }
}

const S: i64 = 1_000_000_000;

/// The shape of `nomad job init`'s example.nomad.hcl, with its optional blocks filled in.
const EXAMPLE: &str = r#"
# There can only be a single job definition per file.
job "example" {
  # Run the job in the global region, which is the default.
  # region = "global"

  datacenters = ["dc1"]
  type        = "service"

  update {
    max_parallel      = 1
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = false
    canary            = 0
  }

  migrate {
    max_parallel     = 1
    health_check     = "checks"
    min_healthy_time = "10s"
    healthy_deadline = "5m"
  }

  ui {
    description = "Redis **cache**"
    link {
      label = "Docs"
      url   = "https://example.com/docs"
    }
  }

  group "cache" {
    count = 1

    network {
      port "db" {
        to = 6379
      }
    }

    service {
      name     = "redis-cache"
      tags     = ["global", "cache"]
      port     = "db"
      provider = "nomad"

      check {
        name     = "alive"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    ephemeral_disk {
      size = 300
    }

    task "redis" {
      driver = "docker"

      config {
        image          = "redis:7"
        ports          = ["db"]
        auth_soft_fail = true
      }

      identity {
        env  = true
        file = true
      }

      logs {
        max_files     = 10
        max_file_size = 15
      }

      resources {
        cpu    = 500 # 500 MHz
        memory = 256 # 256MB
      }

      kill_timeout = "20s"
    }
  }
}
"#;

#[test]
fn job_init_example() {
    let j = parse_json(EXAMPLE);
    assert_eq!(j["ID"], "example");
    assert_eq!(j["Name"], "example");
    assert_eq!(j["Type"], "service");
    assert_eq!(j["Datacenters"], json!(["dc1"]));
    assert_eq!(
        j["UI"],
        json!({"Description": "Redis **cache**", "Links": [{"Label": "Docs", "URL": "https://example.com/docs"}]})
    );
    // Not canonicalised: what the file does not say stays zero.
    assert_eq!(j["Region"], "");
    assert_eq!(j["Priority"], 0);
    assert_eq!(
        j["Update"],
        json!({
            "AutoPromote": false, "AutoRevert": false, "Canary": 0, "HealthCheck": "",
            "HealthyDeadline": 180 * S, "MaxParallel": 1, "MinHealthyTime": 10 * S,
            "ProgressDeadline": 600 * S, "Stagger": 0
        })
    );
    let g = &j["TaskGroups"][0];
    assert_eq!(g["Name"], "cache");
    assert_eq!(g["Count"], 1);
    // The job-level migrate block applies to the group (caravan's Job has no such field).
    assert_eq!(
        g["Migrate"],
        json!({"HealthCheck": "checks", "HealthyDeadline": 300 * S, "MaxParallel": 1, "MinHealthyTime": 10 * S})
    );
    assert_eq!(
        g["Networks"],
        json!([{
            "CIDR": "", "DNS": null, "Device": "",
            "DynamicPorts": [{"HostNetwork": "", "Label": "db", "To": 6379, "Value": 0}],
            "Hostname": "", "IP": "", "MBits": 0, "Mode": "", "ReservedPorts": null
        }])
    );
    assert_eq!(
        g["RestartPolicy"],
        json!({"Attempts": 2, "Delay": 15 * S, "Interval": 1800 * S, "Mode": "fail", "RenderTemplates": false})
    );
    assert_eq!(
        g["EphemeralDisk"],
        json!({"Migrate": false, "SizeMB": 300, "Sticky": false})
    );
    let svc = &g["Services"][0];
    assert_eq!(svc["Name"], "redis-cache");
    assert_eq!(svc["Tags"], json!(["global", "cache"]));
    assert_eq!(svc["PortLabel"], "db");
    assert_eq!(svc["Provider"], "nomad");
    assert_eq!(svc["Checks"][0]["Type"], "tcp");
    assert_eq!(svc["Checks"][0]["Interval"], 10 * S);
    assert_eq!(svc["Checks"][0]["Timeout"], 2 * S);
    let t = &g["Tasks"][0];
    assert_eq!(t["Name"], "redis");
    assert_eq!(t["Driver"], "docker");
    assert_eq!(
        t["Config"],
        json!({"auth_soft_fail": true, "image": "redis:7", "ports": ["db"]})
    );
    assert_eq!(t["Identity"], json!({"Env": true, "File": true}));
    assert_eq!(
        t["LogConfig"],
        json!({"Disabled": false, "MaxFileSizeMB": 15, "MaxFiles": 10})
    );
    assert_eq!(t["Resources"]["CPU"], 500);
    assert_eq!(t["Resources"]["MemoryMB"], 256);
    assert_eq!(t["KillTimeout"], 20 * S);
    assert_eq!(t["RestartPolicy"], Value::Null);
}

#[test]
fn canonicalized_example_validates() {
    let mut job = parse(EXAMPLE, "input.hcl", &ParseOptions::default()).unwrap();
    job.canonicalize();
    job.validate().unwrap();
    assert_eq!(job.region, "global");
    assert_eq!(job.priority, 50);
}

#[test]
fn raw_exec_batch_job() {
    let j = parse_json(
        r#"
job "backup" {
  type        = "batch"
  datacenters = ["dc1", "dc2"]
  priority    = 70
  node_pool   = "batch"

  periodic {
    cron             = "0 3 * * *"
    prohibit_overlap = true
    time_zone        = "Europe/Paris"
  }

  parameterized {
    payload       = "optional"
    meta_required = ["target"]
    meta_optional = ["verbose"]
  }

  meta {
    team = "storage"
    tier = 2
  }

  group "run" {
    reschedule {
      attempts  = 3
      interval  = "1h"
      delay     = "30s"
      unlimited = false
    }

    task "dump" {
      driver = "raw_exec"
      user   = "backup"

      config {
        command = "/usr/local/bin/dump"
        args    = ["--all", "--out", "${NOMAD_TASK_DIR}/dump.sql"]
      }

      env {
        PGHOST = "db.service.consul"
        RETRIES = 3
      }

      artifact {
        source      = "https://example.com/dump.tar.gz"
        destination = "local/tools"
        options {
          checksum = "sha256:abcd"
        }
      }

      template {
        data        = <<-EOT
          target={{ env "NOMAD_META_target" }}
          alloc=${NOMAD_ALLOC_ID}
        EOT
        destination = "local/dump.env"
        env         = true
      }

      dispatch_payload {
        file = "input.json"
      }

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      logs {
        disabled = true
      }

      kill_signal  = "SIGINT"
      kill_timeout = "1m"
      leader       = true
    }
  }
}
"#,
    );
    assert_eq!(j["Type"], "batch");
    assert_eq!(j["Priority"], 70);
    assert_eq!(j["NodePool"], "batch");
    assert_eq!(j["Datacenters"], json!(["dc1", "dc2"]));
    assert_eq!(
        j["Periodic"],
        json!({"Enabled": true, "ProhibitOverlap": true, "Spec": "0 3 * * *", "SpecType": "cron", "Specs": null, "TimeZone": "Europe/Paris"})
    );
    assert_eq!(
        j["ParameterizedJob"],
        json!({"MetaOptional": ["verbose"], "MetaRequired": ["target"], "Payload": "optional"})
    );
    assert_eq!(j["Meta"], json!({"team": "storage", "tier": "2"}));
    let g = &j["TaskGroups"][0];
    assert_eq!(
        g["ReschedulePolicy"],
        json!({"Attempts": 3, "Delay": 30 * S, "DelayFunction": "", "Interval": 3600 * S, "MaxDelay": 0, "Unlimited": false})
    );
    let t = &g["Tasks"][0];
    assert_eq!(t["User"], "backup");
    assert_eq!(
        t["Config"]["args"],
        json!(["--all", "--out", "${NOMAD_TASK_DIR}/dump.sql"])
    );
    assert_eq!(
        t["Env"],
        json!({"PGHOST": "db.service.consul", "RETRIES": "3"})
    );
    assert_eq!(
        t["Artifacts"][0]["GetterSource"],
        "https://example.com/dump.tar.gz"
    );
    assert_eq!(t["Artifacts"][0]["RelativeDest"], "local/tools");
    assert_eq!(
        t["Artifacts"][0]["GetterOptions"],
        json!({"checksum": "sha256:abcd"})
    );
    let tmpl = &t["Templates"][0];
    assert_eq!(
        tmpl["EmbeddedTmpl"],
        "target={{ env \"NOMAD_META_target\" }}\nalloc=${NOMAD_ALLOC_ID}\n"
    );
    assert_eq!(tmpl["DestPath"], "local/dump.env");
    assert_eq!(tmpl["Envvars"], true);
    // jobspec2's template defaults.
    assert_eq!(tmpl["ChangeMode"], "restart");
    assert_eq!(tmpl["Perms"], "0644");
    assert_eq!(tmpl["Splay"], 5 * S);
    assert_eq!(tmpl["ErrMissingKey"], false);
    assert_eq!(t["DispatchPayload"], json!({"File": "input.json"}));
    assert_eq!(
        t["Lifecycle"],
        json!({"Hook": "prestart", "Sidecar": false})
    );
    assert_eq!(t["LogConfig"]["Disabled"], true);
    assert_eq!(t["KillSignal"], "SIGINT");
    assert_eq!(t["KillTimeout"], 60 * S);
    assert_eq!(t["Leader"], true);
}

#[test]
fn system_job_with_constraints() {
    let j = parse_json(
        r#"
job "node-exporter" {
  type = "system"

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  constraint {
    attribute = "${attr.cpu.arch}"
    operator  = "regexp"
    value     = "amd64|arm64"
  }

  group "exporter" {
    constraint {
      distinct_hosts = true
    }

    constraint {
      distinct_property = "${meta.rack}"
      value             = "2"
    }

    constraint {
      attribute = "${attr.nomad.version}"
      version   = ">= 1.6.0"
    }

    constraint {
      attribute    = "${meta.roles}"
      set_contains = "metrics"
    }

    constraint {
      attribute = "${attr.unique.hostname}"
      regexp    = "^web-"
    }

    constraint {
      attribute = "${meta.gpu}"
      operator  = "is_set"
    }

    task "exporter" {
      driver = "exec"

      constraint {
        attribute = "${driver.exec}"
        value     = true
      }

      config {
        command = "node_exporter"
      }
    }
  }
}
"#,
    );
    assert_eq!(j["Type"], "system");
    assert_eq!(
        j["Constraints"],
        json!([
            {"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"},
            {"LTarget": "${attr.cpu.arch}", "Operand": "regexp", "RTarget": "amd64|arm64"}
        ])
    );
    let g = &j["TaskGroups"][0];
    assert_eq!(
        g["Constraints"],
        json!([
            {"LTarget": "", "Operand": "distinct_hosts", "RTarget": ""},
            {"LTarget": "${meta.rack}", "Operand": "distinct_property", "RTarget": "2"},
            {"LTarget": "${attr.nomad.version}", "Operand": "version", "RTarget": ">= 1.6.0"},
            {"LTarget": "${meta.roles}", "Operand": "set_contains", "RTarget": "metrics"},
            {"LTarget": "${attr.unique.hostname}", "Operand": "regexp", "RTarget": "^web-"},
            {"LTarget": "${meta.gpu}", "Operand": "is_set", "RTarget": ""}
        ])
    );
    assert_eq!(
        g["Tasks"][0]["Constraints"],
        json!([{"LTarget": "${driver.exec}", "Operand": "=", "RTarget": "true"}])
    );
}

#[test]
fn affinities_and_spreads() {
    let j = parse_json(
        r#"
job "web" {
  affinity {
    attribute = "${node.datacenter}"
    value     = "us-west1"
    weight    = 100
  }

  spread {
    attribute = "${node.datacenter}"
    weight    = 100

    target "us-east1" {
      percent = 60
    }

    target "us-west1" {
      percent = 40
    }
  }

  group "web" {
    count = 4

    affinity {
      attribute = "${meta.rack}"
      operator  = "set_contains_any"
      value     = "r1,r2"
      weight    = -50
    }

    affinity {
      attribute = "${attr.kernel.version}"
      semver    = ">= 5.10"
    }

    spread {
      attribute = "${meta.rack}"
    }

    task "web" {
      driver = "docker"
      config {
        image = "nginx:1.27"
      }
      affinity {
        attribute = "${node.class}"
        value     = "fast"
        weight    = 25
      }
    }
  }
}
"#,
    );
    assert_eq!(
        j["Affinities"],
        json!([{"LTarget": "${node.datacenter}", "Operand": "=", "RTarget": "us-west1", "Weight": 100}])
    );
    assert_eq!(
        j["Spreads"],
        json!([{
            "Attribute": "${node.datacenter}",
            "SpreadTarget": [{"Percent": 60, "Value": "us-east1"}, {"Percent": 40, "Value": "us-west1"}],
            "Weight": 100
        }])
    );
    let g = &j["TaskGroups"][0];
    assert_eq!(g["Count"], 4);
    assert_eq!(
        g["Affinities"],
        json!([
            {"LTarget": "${meta.rack}", "Operand": "set_contains_any", "RTarget": "r1,r2", "Weight": -50},
            {"LTarget": "${attr.kernel.version}", "Operand": "semver", "RTarget": ">= 5.10", "Weight": 50}
        ])
    );
    assert_eq!(
        g["Spreads"],
        json!([{"Attribute": "${meta.rack}", "SpreadTarget": null, "Weight": 50}])
    );
    assert_eq!(g["Tasks"][0]["Affinities"][0]["Weight"], 25);
}

#[test]
fn networks_and_ports() {
    let j = parse_json(
        r#"
job "api" {
  group "api" {
    network {
      mode     = "bridge"
      hostname = "api"

      port "http" {
        to = 8080
      }

      port "admin" {
        static       = 9000
        to           = 9000
        host_network = "private"
      }

      dns {
        servers  = ["1.1.1.1"]
        searches = ["internal"]
        options  = ["ndots:2"]
      }
    }

    service {
      name = "api"
      port = "http"
      tags = ["v1"]
      meta {
        version = "1.2.3"
      }
      check_restart {
        limit = 3
        grace = "90s"
      }
      check {
        type     = "http"
        path     = "/health"
        interval = "5s"
        timeout  = "1s"
        header {
          Authorization = ["Bearer x"]
        }
      }
      check {
        type     = "tcp"
        interval = "10s"
        timeout  = "1s"
        check_restart {
          limit = 5
        }
      }
    }

    task "api" {
      driver = "docker"
      config {
        image = "api:1"
        ports = ["http", "admin"]
      }
      resources {
        cpu        = 200
        cores      = 0
        memory     = 128
        memory_max = 512

        device "nvidia/gpu" {
          count = 2

          constraint {
            attribute = "${device.attr.memory}"
            operator  = ">="
            value     = "2 GiB"
          }
        }
      }
    }
  }
}
"#,
    );
    let n = &j["TaskGroups"][0]["Networks"][0];
    assert_eq!(n["Mode"], "bridge");
    assert_eq!(n["Hostname"], "api");
    // A port with a static value is a reserved port.
    assert_eq!(
        n["DynamicPorts"],
        json!([{"HostNetwork": "", "Label": "http", "To": 8080, "Value": 0}])
    );
    assert_eq!(
        n["ReservedPorts"],
        json!([{"HostNetwork": "private", "Label": "admin", "To": 9000, "Value": 9000}])
    );
    assert_eq!(
        n["DNS"],
        json!({"Options": ["ndots:2"], "Searches": ["internal"], "Servers": ["1.1.1.1"]})
    );
    let svc = &j["TaskGroups"][0]["Services"][0];
    assert_eq!(svc["Meta"], json!({"version": "1.2.3"}));
    let checks = &svc["Checks"];
    assert_eq!(checks[0]["Path"], "/health");
    assert_eq!(checks[0]["Header"], json!({"Authorization": ["Bearer x"]}));
    // The service's check_restart applies to each check, under the check's own.
    assert_eq!(
        checks[0]["CheckRestart"],
        json!({"Grace": 90 * S, "IgnoreWarnings": false, "Limit": 3})
    );
    assert_eq!(
        checks[1]["CheckRestart"],
        json!({"Grace": 90 * S, "IgnoreWarnings": false, "Limit": 5})
    );
    let r = &j["TaskGroups"][0]["Tasks"][0]["Resources"];
    assert_eq!(r["MemoryMaxMB"], 512);
    assert_eq!(
        r["Devices"],
        json!([{
            "Affinities": null,
            "Constraints": [{"LTarget": "${device.attr.memory}", "Operand": ">=", "RTarget": "2 GiB"}],
            "Count": 2,
            "Name": "nvidia/gpu"
        }])
    );
}

#[test]
fn groups_with_volumes_disconnect_and_scaling() {
    let j = parse_json(
        r#"
job "db" {
  reschedule {
    delay          = "10s"
    delay_function = "constant"
  }

  group "db" {
    shutdown_delay               = "5s"
    stop_after_client_disconnect = "1m"
    max_client_disconnect        = "2h"

    reschedule {
      attempts = 0
    }

    volume "data" {
      type      = "host"
      source    = "pg-data"
      read_only = false
    }

    scaling {
      min = 2
      max = 5
    }

    task "pg" {
      driver = "docker"
      config {
        image = "postgres:16"
        mount {
          type   = "bind"
          source = "local/conf"
          target = "/etc/postgresql"
        }
        labels = {
          team = "db"
        }
      }
      volume_mount {
        volume      = "data"
        destination = "/var/lib/postgresql"
      }
      restart {
        attempts = 5
        mode     = "delay"
      }
    }
  }
}
"#,
    );
    let g = &j["TaskGroups"][0];
    assert_eq!(g["ShutdownDelay"], 5 * S);
    assert_eq!(g["StopAfterClientDisconnect"], 60 * S);
    assert_eq!(g["MaxClientDisconnect"], 7200 * S);
    // No count: the scaling block's minimum.
    assert_eq!(g["Count"], 2);
    assert_eq!(
        g["Scaling"],
        json!({"Max": 5, "Min": 2, "Type": "horizontal"})
    );
    // Job-level reschedule merged under the group's own.
    assert_eq!(
        g["ReschedulePolicy"],
        json!({"Attempts": 0, "Delay": 10 * S, "DelayFunction": "constant", "Interval": 0, "MaxDelay": 0, "Unlimited": false})
    );
    assert_eq!(g["Volumes"]["data"]["Source"], "pg-data");
    assert_eq!(g["Volumes"]["data"]["Type"], "host");
    assert_eq!(g["Volumes"]["data"]["Name"], "data");
    let t = &g["Tasks"][0];
    // Nested config blocks are lists of objects; an object attribute is a one-element list.
    assert_eq!(
        t["Config"]["mount"],
        json!([{"source": "local/conf", "target": "/etc/postgresql", "type": "bind"}])
    );
    assert_eq!(t["Config"]["labels"], json!([{"team": "db"}]));
    assert_eq!(t["VolumeMounts"][0]["Destination"], "/var/lib/postgresql");
    assert_eq!(t["RestartPolicy"]["Attempts"], 5);
    assert_eq!(t["RestartPolicy"]["Mode"], "delay");
}

#[test]
fn interpolation_of_runtime_values_is_preserved() {
    let j = parse_json(
        r#"
job "interp" {
  region = "foo-${attr.network.dev-us-east1-relay-vpc.external-ip.0}"
  meta {
    node     = "${node.unique.id}"
    env      = "${env["HOME"]}"
    port     = "${NOMAD_PORT_http}"
    spaces   = "with spaces ${   root.  field[  "FOO"].5  }"
    unquoted = meta.mytest
    escaped  = "$${not_interpolated}"
    mixed    = "${upper("a")}-${node.region}"
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/echo"
        args    = ["${NOMAD_ALLOC_DIR}", "${meta.x}"]
      }
    }
  }
}
"#,
    );
    assert_eq!(
        j["Region"],
        "foo-${attr.network.dev-us-east1-relay-vpc.external-ip.0}"
    );
    assert_eq!(
        j["Meta"],
        json!({
            "env": "${env[\"HOME\"]}",
            "escaped": "${not_interpolated}",
            "mixed": "A-${node.region}",
            "node": "${node.unique.id}",
            "port": "${NOMAD_PORT_http}",
            "spaces": "with spaces ${   root.  field[  \"FOO\"].5  }",
            "unquoted": "${meta.mytest}"
        })
    );
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["Config"]["args"],
        json!(["${NOMAD_ALLOC_DIR}", "${meta.x}"])
    );
}

#[test]
fn meta_and_env_as_attributes_or_blocks() {
    let blocks = r#"
job "example" {
  meta {
    source = "job"
  }
  group "group" {
    meta {
      source = "group"
    }
    task "task" {
      driver = "config"
      config {}
      meta {
        source = "task"
      }
      env {
        key = "value"
      }
    }
  }
}
"#;
    let attrs = blocks
        .replace("meta {", "meta = {")
        .replace("env {", "env = {");
    let a = parse_json(blocks);
    let b = parse_json(&attrs);
    assert_eq!(a, b);
    assert_eq!(a["Meta"], json!({"source": "job"}));
    assert_eq!(a["TaskGroups"][0]["Meta"], json!({"source": "group"}));
    assert_eq!(
        a["TaskGroups"][0]["Tasks"][0]["Meta"],
        json!({"source": "task"})
    );
    let dotted = parse_json(
        r#"
job "e" {
  group "g" {
    task "t" {
      driver = "docker"
      env = {
        "key.dot"                = "val1"
        key_unquoted_without_dot = "val2"
      }
    }
  }
}
"#,
    );
    assert_eq!(
        dotted["TaskGroups"][0]["Tasks"][0]["Env"],
        json!({"key.dot": "val1", "key_unquoted_without_dot": "val2"})
    );
}

#[test]
fn job_level_tasks_become_groups_first() {
    let j = parse_json(
        r#"
job "solo" {
  vault {
    policies = ["read"]
  }
  group "second" {
    task "b" {
      driver = "raw_exec"
    }
  }
  task "first" {
    driver = "raw_exec"
  }
}
"#,
    );
    let groups = j["TaskGroups"].as_array().unwrap();
    assert_eq!(groups[0]["Name"], "first");
    assert_eq!(groups[0]["Tasks"][0]["Name"], "first");
    assert_eq!(groups[1]["Name"], "second");
    // The job's vault block reaches every task, with jobspec2's defaults.
    assert_eq!(
        groups[1]["Tasks"][0]["Vault"],
        json!({"ChangeMode": "restart", "Env": true, "Policies": ["read"]})
    );
}

#[test]
fn dynamic_blocks() {
    let j = parse_json(
        r#"
job "example" {
  dynamic "group" {
    for_each = [
      { name = "groupA", idx = 1 },
      { name = "groupB", idx = 2 },
    ]
    labels = [group.value.name]

    content {
      count = group.value.idx

      service {
        port = group.value.name
      }

      task "simple" {
        driver = "raw_exec"
        config {
          command = group.value.name
        }
        meta {
          VERSION = group.value.idx
        }
        env {
          ID = format("id:%s", group.value.idx)
        }
        resources {
          cpu = group.value.idx
        }
      }
    }
  }
}
"#,
    );
    let groups = j["TaskGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["Name"], "groupA");
    assert_eq!(groups[1]["Name"], "groupB");
    assert_eq!(groups[1]["Count"], 2);
    assert_eq!(groups[0]["Services"][0]["PortLabel"], "groupA");
    let t = &groups[0]["Tasks"][0];
    assert_eq!(t["Config"]["command"], "groupA");
    assert_eq!(t["Meta"]["VERSION"], "1");
    assert_eq!(t["Env"]["ID"], "id:1");
    assert_eq!(t["Resources"]["CPU"], 1);
    assert_eq!(groups[1]["Tasks"][0]["Env"]["ID"], "id:2");
}

#[test]
fn constraint_alternatives_match() {
    let op_value = r#"
job "example" {
  constraint {
    operator = "distinct_hosts"
    value    = "true"
  }
  constraint {
    operator  = "distinct_property"
    attribute = "${meta.rack}"
    value     = "1"
  }
}
"#;
    let compact = r#"
job "example" {
  constraint {
    distinct_hosts = true
  }
  constraint {
    distinct_property = "${meta.rack}"
    value             = "1"
  }
}
"#;
    let a = parse_json(op_value);
    let b = parse_json(compact);
    assert_eq!(a["Constraints"][1], b["Constraints"][1]);
    assert_eq!(
        a["Constraints"][0],
        json!({"LTarget": "", "Operand": "distinct_hosts", "RTarget": "true"})
    );
    assert_eq!(b["Constraints"][0]["Operand"], "distinct_hosts");
}

#[test]
fn templates_with_wait_and_change_script() {
    let j = parse_json(
        r#"
job "t" {
  group "g" {
    task "t" {
      driver = "docker"
      template {
        data          = "x"
        destination   = "local/x"
        change_mode   = "script"
        splay         = "0s"
        perms         = "0600"
        uid           = 1000
        left_delimiter  = "[["
        right_delimiter = "]]"
        error_on_missing_key = true
        wait {
          min = "5s"
          max = "60s"
        }
        change_script {
          command = "/local/reload.sh"
        }
      }
    }
  }
}
"#,
    );
    let t = &j["TaskGroups"][0]["Tasks"][0]["Templates"][0];
    assert_eq!(t["ChangeMode"], "script");
    assert_eq!(t["Splay"], 0);
    assert_eq!(t["Perms"], "0600");
    assert_eq!(t["Uid"], 1000);
    assert_eq!(t["Gid"], Value::Null);
    assert_eq!(t["LeftDelim"], "[[");
    assert_eq!(t["ErrMissingKey"], true);
    assert_eq!(t["Wait"], json!({"Max": 60 * S, "Min": 5 * S}));
    assert_eq!(
        t["ChangeScript"],
        json!({"Args": [], "Command": "/local/reload.sh", "FailOnError": false, "Timeout": 5 * S})
    );
}

#[test]
fn task_scaling_policies() {
    let j = parse_json(
        r#"
job "example" {
  group "g1" {
    scaling {
      max  = 40
      type = "horizontal"
      policy {
        cooldown = "1m"
        check "cpu" {
          source = "prometheus"
        }
      }
    }

    task "t1" {
      driver = "docker"
      scaling "cpu" {
        max = 20
      }
      scaling "mem" {
        max = 15
      }
    }
  }
}
"#,
    );
    let g = &j["TaskGroups"][0];
    assert_eq!(g["Count"], 1);
    assert_eq!(
        g["Scaling"]["Policy"],
        json!({"check": [{"cpu": [{"source": "prometheus"}]}], "cooldown": "1m"})
    );
    assert_eq!(
        g["Tasks"][0]["ScalingPolicies"],
        json!([{"Max": 20, "Type": "vertical_cpu"}, {"Max": 15, "Type": "vertical_mem"}])
    );
}

#[test]
fn consul_connect_is_kept_opaque() {
    let j = parse_json(
        r#"
job "countdash" {
  group "dashboard" {
    network {
      mode = "bridge"
      port "http" {
        static = 9002
        to     = 9002
      }
    }
    service {
      name = "count-dashboard"
      port = "http"
      connect {
        sidecar_service {
          proxy {
            upstreams {
              destination_name = "count-api"
              local_bind_port  = 8080
            }
          }
        }
      }
    }
    task "dashboard" {
      driver = "docker"
      env {
        COUNTING_SERVICE_URL = "http://${NOMAD_UPSTREAM_ADDR_count_api}"
      }
      config {
        image = "hashicorpdev/counter-dashboard:v3"
      }
    }
  }
}
"#,
    );
    let g = &j["TaskGroups"][0];
    assert_eq!(
        g["Services"][0]["Connect"],
        json!({"SidecarService": {"Proxy": {"Upstreams": [{"DestinationName": "count-api", "LocalBindPort": 8080}]}}})
    );
    assert_eq!(
        g["Tasks"][0]["Env"]["COUNTING_SERVICE_URL"],
        "http://${NOMAD_UPSTREAM_ADDR_count_api}"
    );
    assert_eq!(g["Networks"][0]["ReservedPorts"][0]["Value"], 9002);
}

#[test]
fn parsed_jobs_canonicalize_into_valid_jobs() {
    let jobs = [
        r#"
job "sys" {
  type = "system"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
    }
  }
}
"#,
        r#"
job "batch" {
  type = "batch"
  periodic {
    crons = ["*/5 * * * *"]
  }
  group "g" {
    count = 3
    affinity {
      attribute = "${node.class}"
      value     = "big"
    }
    spread {
      attribute = "${node.datacenter}"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"#,
    ];
    for src in jobs {
        let mut job = parse(src, "input.hcl", &ParseOptions::default()).unwrap();
        job.canonicalize();
        if let Err(e) = job.validate() {
            panic!("{}: {e}", job.id);
        }
    }
}

#[test]
fn free_form_config_follows_the_hcl1_shapes() {
    let j = parse_json(
        r#"
job "cfg" {
  group "g" {
    task "t" {
      driver = "docker"
      config {
        name     = "x"
        big      = 42949672950
        ratio    = 0.25
        mixed    = [2, "two", 2.5, { "k" = "v" }]
        empty    = []
        labels   = { "A" = "1", "B" = "2" }
        none     = {}
        mount {
          type = "bind"
        }
        mount {
          type = "volume"
        }
        port_map "web" {
          port = 80
        }
        deep "a" "b" {
          leaf = true
          inner {
            opts = { "o" = "p" }
          }
        }
      }
    }
  }
}
"#,
    );
    assert_eq!(
        j["TaskGroups"][0]["Tasks"][0]["Config"],
        json!({
            "big": 42_949_672_950_i64,
            "deep": [{"a": [{"b": [{"inner": [{"opts": [{"o": "p"}]}], "leaf": true}]}]}],
            "empty": [],
            "labels": [{"A": "1", "B": "2"}],
            "mixed": [2, "two", 2.5, {"k": "v"}],
            "mount": [{"type": "bind"}, {"type": "volume"}],
            "name": "x",
            "none": [{}],
            "port_map": [{"web": [{"port": 80}]}],
            "ratio": 0.25
        })
    );
}

#[test]
fn check_restart_without_grace_gets_the_api_default() {
    let j = parse_json(
        r#"
job "web" {
  group "g" {
    service {
      name     = "api"
      provider = "nomad"
      check_restart {
        limit = 2
      }
      check {
        type     = "tcp"
        port     = "http"
        interval = "5s"
        timeout  = "1s"
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
      }
    }
  }
}
"#,
    );
    let check = &j["TaskGroups"][0]["Services"][0]["Checks"][0];
    assert_eq!(
        check["CheckRestart"],
        json!({"Grace": 1_000_000_000i64, "IgnoreWarnings": false, "Limit": 2})
    );
}
