//! `POST /v1/jobs/parse` over HTTP: HCL2 jobspecs to the JSON job, variables, canonicalize,
//! and every kind of bad input with the parser's line and column.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::*;
use serde_json::{Value, json};

const SPEC: &str = r#"
variable "image_args" {
  type    = list(string)
  default = ["300"]
}

job "cache" {
  datacenters = ["dc1"]
  type        = "service"

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  group "redis" {
    count = 2

    network {
      port "db" {
        to = 6379
      }
    }

    task "redis" {
      driver = "raw_exec"

      config {
        command = "/bin/sleep"
        args    = var.image_args
      }

      resources {
        cpu    = 250
        memory = 128
      }
    }
  }
}
"#;

async fn parse(c: &DevCluster, body: Value) -> api::RawResponse {
    post(&c.client, "/v1/jobs/parse", &body.to_string())
        .await
        .unwrap()
}

#[tokio::test]
async fn parses_jobspecs_and_reports_errors_with_positions() {
    let c = DevCluster::start().await.unwrap();

    let r = parse(&c, json!({"JobHCL": SPEC})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let job: Value = r.json().unwrap();
    assert_eq!(job["ID"], "cache");
    assert_eq!(job["TaskGroups"][0]["Count"], 2);
    let task = &job["TaskGroups"][0]["Tasks"][0];
    assert_eq!(task["Config"]["args"], json!(["300"]));
    assert_eq!(task["Resources"]["CPU"], 250);
    // Runtime references stay as text.
    assert_eq!(job["Constraints"][0]["LTarget"], "${attr.kernel.name}");
    assert_eq!(
        job["TaskGroups"][0]["Networks"][0]["DynamicPorts"][0]["To"],
        6379
    );
    // Not canonicalized unless asked.
    assert_eq!(job["Priority"], 0);

    let r = parse(
        &c,
        json!({"JobHCL": SPEC, "Canonicalize": true, "Variables": "image_args = [\"1\", \"2\"]\n"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let job: Value = r.json().unwrap();
    assert_eq!(job["Priority"], 50);
    assert_eq!(job["Region"], "global");
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["args"],
        json!(["1", "2"])
    );

    // The parsed job registers as is.
    let r = send(
        &c.client,
        api::Method::PUT,
        "/v1/jobs",
        &json!({ "Job": job }).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    for (body, want) in [
        (json!({"JobHCL": ""}), "Job spec is empty".to_owned()),
        (json!({}), "Job spec is empty".to_owned()),
        (
            json!({"JobHCL": "job \"x\" {\n  group \"g\" {\n    cont = 1\n  }\n}\n"}),
            "Failed to parse job: input.hcl:3,5-9: Unsupported argument; An argument named \"cont\" is not expected here. Did you mean \"count\"?".to_owned(),
        ),
        (
            json!({"JobHCL": "job \"x\" {\n  datacenters = [\"dc1\"\n}\n"}),
            "Failed to parse job: input.hcl:3,".to_owned(),
        ),
        (
            json!({"JobHCL": "group \"g\" {}\n"}),
            "Failed to parse job: input.hcl:1,1-6: Unsupported block type".to_owned(),
        ),
        (
            json!({"JobHCL": SPEC, "Variables": "image_args = \n"}),
            "Failed to parse job:".to_owned(),
        ),
        (
            json!({"JobHCL": 7}),
            "Request decode failed: json: cannot unmarshal number into field JobHCL".to_owned(),
        ),
    ] {
        let r = parse(&c, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().starts_with(&want), "{body}:\n{}\nwant: {want}", r.text());
    }
    let r = post(&c.client, "/v1/jobs/parse", "not json").await.unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}
