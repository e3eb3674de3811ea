//! The ACL endpoints over HTTP (ACL.md §2–§4 and §10): bootstrap (once, the reset file),
//! policies, tokens (validation, self, pagination, one-time tokens) and roles, with Nomad's
//! shapes and texts; and `ACL support disabled` when ACLs are off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

#[tokio::test]
async fn with_acls_off_every_acl_endpoint_says_so() {
    let c = DevCluster::start().await.unwrap();
    for (method, path) in [
        (Method::POST, "/v1/acl/bootstrap"),
        (Method::GET, "/v1/acl/policies"),
        (Method::GET, "/v1/acl/policy/x"),
        (Method::GET, "/v1/acl/tokens"),
        (Method::GET, "/v1/acl/token/self"),
        (Method::GET, "/v1/acl/roles"),
        (Method::POST, "/v1/acl/token/onetime"),
    ] {
        expect_error(
            &json_call(&c.client, method, path, &Value::Null).await,
            400,
            "ACL support disabled",
        );
    }
    // Junk tokens are ignored elsewhere.
    let junk = with_token(&c, "junk");
    let (jobs, _) = get_json(&junk, "/v1/jobs").await.unwrap();
    assert_eq!(jobs, json!([]));
}

#[tokio::test]
async fn bootstrap_happens_once_unless_the_reset_file_allows_another() {
    let c = DevCluster::start_with(&["-acl-enabled"]).await.unwrap();
    let anon = &c.client;
    expect_error(
        &json_call(
            anon,
            Method::POST,
            "/v1/acl/bootstrap",
            &json!({"BootstrapSecret": "not-a-uuid"}),
        )
        .await,
        400,
        "invalid acl token",
    );
    let secret = "2b778dd9-f5f1-6f29-b4b4-9a5fa948757a";
    let resp = json_call(
        anon,
        Method::POST,
        "/v1/acl/bootstrap",
        &json!({"BootstrapSecret": secret}),
    )
    .await;
    let token = expect_ok(&resp);
    assert_eq!(token["SecretID"], secret);
    assert_eq!(token["Name"], "Bootstrap Token");
    assert_eq!(token["Type"], "management");
    assert_eq!(token["Global"], true);
    assert_eq!(token["Policies"], Value::Null);
    assert_eq!(token["ExpirationTime"], Value::Null);
    assert_eq!(token["ExpirationTTL"], "");
    assert!(token["Hash"].as_str().unwrap().len() == 44, "{token}");
    let index: u64 = resp.header("x-nomad-index").unwrap().parse().unwrap();
    assert_eq!(token["CreateIndex"], index);

    let again = json_call(anon, Method::PUT, "/v1/acl/bootstrap", &Value::Null).await;
    expect_error(
        &again,
        400,
        &format!("ACL bootstrap already done (reset index: {index})"),
    );
    let reset = c.data_dir.path().join("server").join("acl-bootstrap-reset");
    std::fs::create_dir_all(reset.parent().unwrap()).unwrap();
    std::fs::write(&reset, "7\n").unwrap();
    expect_error(
        &json_call(anon, Method::PUT, "/v1/acl/bootstrap", &Value::Null).await,
        400,
        &format!("Invalid bootstrap reset index (specified 7, reset index: {index})"),
    );
    std::fs::write(&reset, format!(" {index}\n")).unwrap();
    let second = acl_bootstrap(anon).await;
    assert_ne!(second["SecretID"], secret);
    // The file names an old bootstrap now.
    expect_error(
        &json_call(anon, Method::PUT, "/v1/acl/bootstrap", &Value::Null).await,
        400,
        "Invalid bootstrap reset index",
    );
    let resp = json_call(anon, Method::GET, "/v1/acl/bootstrap", &Value::Null).await;
    assert_eq!(resp.status, 405);
}

#[tokio::test]
async fn policies_are_written_validated_read_and_listed_by_who_holds_them() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    let anon = &c.client;

    acl_policy(
        &root,
        "readonly",
        r#"namespace "default" { policy = "read" }"#,
    )
    .await;
    acl_policy(&root, "ops", r#"node { policy = "write" }"#).await;
    acl_policy(&root, "empty", "").await;
    acl_policy(
        &root,
        "anonymous",
        r#"namespace "*" { capabilities = ["list-jobs"] }"#,
    )
    .await;

    // Bad policies, with Nomad's texts.
    let bad = |name: &'static str, body: Value| {
        let root = root.clone();
        async move { json_call(&root, Method::PUT, &format!("/v1/acl/policy/{name}"), &body).await }
    };
    expect_error(
        &bad("a", json!({"Name": "b", "Rules": ""})).await,
        400,
        "ACL policy name does not match request path",
    );
    expect_error(
        &bad("bad_name", json!({"Name": "bad_name", "Rules": ""})).await,
        400,
        "policy 0 invalid: 1 error occurred:\n\t* invalid name 'bad_name'",
    );
    expect_error(
        &bad(
            "x",
            json!({"Name": "x", "Rules": r#"namespace "default" { policy = "list" }"#}),
        )
        .await,
        400,
        "Invalid namespace policy",
    );
    expect_error(
        &bad(
            "x",
            json!({"Name": "x", "Rules": r#"namespace { policy = "read" }"#}),
        )
        .await,
        400,
        "Invalid namespace name",
    );
    expect_error(
        &bad("x", json!({"Name": "x", "Rules": "namespace \"a\" {"})).await,
        400,
        "failed to parse rules: Failed to parse ACL Policy",
    );
    expect_error(
        &send(&root, Method::PUT, "/v1/acl/policy/x", "")
            .await
            .unwrap(),
        400,
        "Request body is empty",
    );
    // Only management writes policies.
    expect_error(
        &json_call(
            anon,
            Method::PUT,
            "/v1/acl/policy/x",
            &json!({"Name": "x", "Rules": ""}),
        )
        .await,
        403,
        "Permission denied",
    );

    let (policy, meta) = get_json(&root, "/v1/acl/policy/readonly").await.unwrap();
    assert_eq!(policy["Name"], "readonly");
    assert_eq!(policy["Description"], "d");
    assert!(policy["Hash"].is_string());
    assert_eq!(policy["JobACL"], Value::Null);
    let ns = &policy["RulesJSON"]["Namespaces"][0];
    assert_eq!(ns["Name"], "default");
    assert_eq!(ns["Policy"], "read");
    assert!(
        ns["Capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("read-job"))
    );
    assert_eq!(meta.last_index, policy["ModifyIndex"].as_u64().unwrap());
    expect_error(
        &json_call(&root, Method::GET, "/v1/acl/policy/nope", &Value::Null).await,
        404,
        "ACL policy not found",
    );

    let (all, _) = get_json(&root, "/v1/acl/policies").await.unwrap();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anonymous", "empty", "ops", "readonly"]);
    assert!(all[0].get("Rules").is_none(), "stubs carry no rules");

    // A client token sees its own policies, reads them, and no others.
    let ro = acl_token(
        &root,
        json!({"Name": "ro", "Type": "client", "Policies": ["readonly", "gone"]}),
    )
    .await;
    let ro = with_token(&c, ro["SecretID"].as_str().unwrap());
    let (mine, _) = get_json(&ro, "/v1/acl/policies").await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["Name"], "readonly");
    expect_ok(&json_call(&ro, Method::GET, "/v1/acl/policy/readonly", &Value::Null).await);
    expect_error(
        &json_call(&ro, Method::GET, "/v1/acl/policy/ops", &Value::Null).await,
        403,
        "Permission denied",
    );
    // The anonymous policy is readable by everyone, and is all the anonymous caller holds.
    expect_ok(&json_call(anon, Method::GET, "/v1/acl/policy/anonymous", &Value::Null).await);
    let (visible, _) = get_json(anon, "/v1/acl/policies").await.unwrap();
    assert_eq!(visible.as_array().unwrap().len(), 1);
    // Unknown and junk tokens are refused.
    let junk = with_token(&c, "f9e1c3a4-0000-4000-8000-000000000000");
    expect_error(
        &json_call(&junk, Method::GET, "/v1/acl/policies", &Value::Null).await,
        403,
        "Permission denied",
    );

    // Deleting a policy (even a missing one) succeeds.
    let resp = json_call(&root, Method::DELETE, "/v1/acl/policy/ops", &Value::Null).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "");
    let resp = json_call(&root, Method::DELETE, "/v1/acl/policy/ops", &Value::Null).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test]
async fn tokens_are_created_validated_read_paged_and_deleted() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let boot = acl_bootstrap(&c.client).await;
    let root = with_token(&c, boot["SecretID"].as_str().unwrap());
    acl_policy(
        &root,
        "readonly",
        r#"namespace "default" { policy = "read" }"#,
    )
    .await;

    let invalid = |body: Value, text: &'static str| {
        let root = root.clone();
        async move {
            expect_error(
                &json_call(&root, Method::POST, "/v1/acl/token", &body).await,
                400,
                text,
            );
        }
    };
    invalid(
        json!({"Type": "client"}),
        "token 0 invalid: 1 error occurred:\n\t* client token missing policies or roles",
    )
    .await;
    invalid(
        json!({"Type": "management", "Policies": ["readonly"]}),
        "management token cannot be associated with policies or roles",
    )
    .await;
    invalid(
        json!({"Type": "admin", "Policies": ["readonly"]}),
        "token type must be client or management",
    )
    .await;
    invalid(
        json!({"Type": "client", "Policies": ["readonly"], "ExpirationTTL": "30s"}),
        "expiration time cannot be less than 1m0s in the future (was 30s)",
    )
    .await;
    invalid(
        json!({"Type": "client", "Policies": ["readonly"], "ExpirationTTL": "48h"}),
        "expiration time cannot be more than 24h0m0s in the future (was 48h0m0s)",
    )
    .await;
    invalid(
        json!({"Type": "client", "Policies": ["readonly"], "ExpirationTTL": "-1h"}),
        "token expiration TTL '-1h0m0s' should not be negative",
    )
    .await;
    invalid(
        json!({"Type": "client", "Policies": ["readonly"], "Roles": [{"Name": "nope"}]}),
        "cannot find role nope",
    )
    .await;
    invalid(
        json!({"Type": "client", "Name": "x".repeat(300), "Policies": ["readonly"]}),
        "token name too long",
    )
    .await;

    // A TTL sets the expiry; a body SecretID is ignored on create; numbers are nanoseconds.
    let ttl = acl_token(
        &root,
        json!({"Name": "ttl", "Type": "client", "Policies": ["readonly"],
            "ExpirationTTL": "1h", "SecretID": "6e5d0ab1-0000-4000-8000-000000000000"}),
    )
    .await;
    assert_eq!(ttl["ExpirationTTL"], "1h0m0s");
    assert_ne!(ttl["SecretID"], "6e5d0ab1-0000-4000-8000-000000000000");
    let created = parse_rfc3339(ttl["CreateTime"].as_str().unwrap()).unwrap();
    let expires = parse_rfc3339(ttl["ExpirationTime"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, 3_600_000_000_000);
    let nanos = acl_token(
        &root,
        json!({"Type": "client", "Policies": ["readonly"], "ExpirationTTL": 600_000_000_000_i64}),
    )
    .await;
    assert_eq!(nanos["ExpirationTTL"], "10m0s");

    // Updates: the accessor must match, global cannot toggle, the TTL must be repeated.
    let accessor = ttl["AccessorID"].as_str().unwrap().to_owned();
    let path = format!("/v1/acl/token/{accessor}");
    expect_error(
        &json_call(&root, Method::POST, &path, &json!({"AccessorID": "other"})).await,
        400,
        "ACL token accessor does not match request path",
    );
    expect_error(
        &json_call(
            &root,
            Method::POST,
            &path,
            &json!({"AccessorID": accessor, "Type": "client", "Policies": ["readonly"],
                "Global": true, "ExpirationTTL": "1h"}),
        )
        .await,
        400,
        "cannot toggle global mode",
    );
    expect_error(
        &json_call(
            &root,
            Method::POST,
            &path,
            &json!({"AccessorID": accessor, "Type": "client", "Policies": ["readonly"]}),
        )
        .await,
        400,
        "cannot update expiration TTL",
    );
    let updated = expect_ok(
        &json_call(
            &root,
            Method::POST,
            &path,
            &json!({"AccessorID": accessor, "Name": "renamed", "Type": "client",
                "Policies": ["readonly"], "ExpirationTTL": "1h"}),
        )
        .await,
    );
    assert_eq!(updated["Name"], "renamed");
    assert_eq!(updated["SecretID"], ttl["SecretID"]);
    // Caravan keeps the stored expiry when the update leaves it out.
    assert_eq!(updated["ExpirationTime"], ttl["ExpirationTime"]);
    assert_ne!(updated["Hash"], ttl["Hash"]);

    // A client token reads itself, not others; management reads all.
    let me = with_token(&c, ttl["SecretID"].as_str().unwrap());
    let own = expect_ok(&json_call(&me, Method::GET, &path, &Value::Null).await);
    assert_eq!(own["SecretID"], ttl["SecretID"]);
    let other = format!("/v1/acl/token/{}", nanos["AccessorID"].as_str().unwrap());
    expect_error(
        &json_call(&me, Method::GET, &other, &Value::Null).await,
        403,
        "Permission denied",
    );
    expect_error(
        &json_call(&me, Method::GET, "/v1/acl/tokens", &Value::Null).await,
        403,
        "Permission denied",
    );
    expect_error(
        &json_call(
            &root,
            Method::GET,
            "/v1/acl/token/00000000-0000-4000-8000-000000000000",
            &Value::Null,
        )
        .await,
        404,
        "ACL token not found",
    );
    let (myself, _) = get_json(&me, "/v1/acl/token/self").await.unwrap();
    assert_eq!(myself["AccessorID"], accessor);
    expect_error(
        &json_call(
            &with_token(&c, "00000000-0000-4000-8000-000000000000"),
            Method::GET,
            "/v1/acl/token/self",
            &Value::Null,
        )
        .await,
        404,
        "ACL token not found",
    );

    // Pages: each token once, with `<CreateIndex>.<AccessorID>` next tokens.
    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let path = if next.is_empty() {
            "/v1/acl/tokens?per_page=1".to_owned()
        } else {
            format!("/v1/acl/tokens?per_page=1&next_token={next}")
        };
        let (page, meta) = get_json(&root, &path).await.unwrap();
        let page = page.as_array().unwrap();
        assert_eq!(page.len(), 1);
        assert!(page[0].get("SecretID").is_none(), "stubs carry no secret");
        seen.push(page[0]["AccessorID"].as_str().unwrap().to_owned());
        if meta.next_token.is_empty() {
            break;
        }
        let (index, id) = meta.next_token.split_once('.').unwrap();
        assert!(
            index.parse::<u64>().is_ok() && id.len() == 36,
            "{}",
            meta.next_token
        );
        next = meta.next_token;
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], boot["AccessorID"].as_str().unwrap());

    // Deleting: unknown accessors are an error; a deleted token stops working.
    expect_error(
        &json_call(&root, Method::DELETE, "/v1/acl/token/nope", &Value::Null).await,
        400,
        "Cannot delete nonexistent tokens: nope",
    );
    let resp = json_call(&root, Method::DELETE, &path, &Value::Null).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    expect_error(
        &json_call(&me, Method::GET, "/v1/acl/token/self", &Value::Null).await,
        404,
        "ACL token not found",
    );
    expect_error(
        &json_call(&me, Method::GET, "/v1/acl/policies", &Value::Null).await,
        403,
        "Permission denied",
    );
}

#[tokio::test]
async fn one_time_tokens_exchange_once_for_their_parent() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    let ott =
        expect_ok(&json_call(&root, Method::POST, "/v1/acl/token/onetime", &Value::Null).await);
    let secret = ott["OneTimeToken"]["OneTimeSecretID"].as_str().unwrap();
    assert!(ott["Index"].as_u64().unwrap() > 0);
    assert!(ott["OneTimeToken"]["ExpiresAt"].is_string());
    let exchange = |secret: String| {
        let anon = c.client.clone();
        async move {
            json_call(
                &anon,
                Method::POST,
                "/v1/acl/token/onetime/exchange",
                &json!({"OneTimeSecretID": secret}),
            )
            .await
        }
    };
    let got = expect_ok(&exchange(secret.to_owned()).await);
    let (me, _) = get_json(&root, "/v1/acl/token/self").await.unwrap();
    assert_eq!(got["Token"]["AccessorID"], me["AccessorID"]);
    assert_eq!(got["Token"]["SecretID"], me["SecretID"]);
    expect_error(&exchange(secret.to_owned()).await, 403, "Permission denied");
    expect_error(&exchange("junk".to_owned()).await, 403, "Permission denied");
    // The anonymous caller has no token to hand out.
    expect_error(
        &json_call(
            &c.client,
            Method::POST,
            "/v1/acl/token/onetime",
            &Value::Null,
        )
        .await,
        400,
        "missing secret id",
    );
}

#[tokio::test]
async fn roles_group_policies_for_tokens() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    acl_policy(
        &root,
        "readonly",
        r#"namespace "default" { policy = "read" }"#,
    )
    .await;
    acl_policy(&root, "ops", r#"node { policy = "write" }"#).await;

    let invalid = |body: Value, text: &'static str| {
        let root = root.clone();
        async move {
            expect_error(
                &json_call(&root, Method::POST, "/v1/acl/role", &body).await,
                400,
                text,
            );
        }
    };
    invalid(
        json!({"Name": "bad name", "Policies": [{"Name": "ops"}]}),
        "role 0 invalid: 1 error occurred:\n\t* invalid name 'bad name'",
    )
    .await;
    invalid(
        json!({"Name": "r"}),
        "at least one policy should be specified",
    )
    .await;
    invalid(
        json!({"Name": "r", "Policies": [{"Name": "nope"}]}),
        "cannot find policy nope",
    )
    .await;

    let role = expect_ok(
        &json_call(
            &root,
            Method::POST,
            "/v1/acl/role",
            &json!({"Name": "operators", "Description": "ops people",
                "Policies": [{"Name": "ops"}, {"Name": "ops"}]}),
        )
        .await,
    );
    let id = role["ID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(role["Policies"], json!([{"Name": "ops"}]));
    assert!(role["Hash"].is_string());
    invalid(
        json!({"Name": "operators", "Policies": [{"Name": "ops"}]}),
        "role with name operators already exists",
    )
    .await;

    let (by_name, _) = get_json(&root, "/v1/acl/role/name/operators")
        .await
        .unwrap();
    assert_eq!(by_name["ID"], id);
    let (by_id, _) = get_json(&root, &format!("/v1/acl/role/{id}"))
        .await
        .unwrap();
    assert_eq!(by_id["Name"], "operators");
    expect_error(
        &json_call(&root, Method::GET, "/v1/acl/role/name/nope", &Value::Null).await,
        404,
        "ACL role not found",
    );
    expect_error(
        &json_call(
            &root,
            Method::POST,
            &format!("/v1/acl/role/{id}"),
            &json!({"ID": "other", "Name": "x", "Policies": [{"Name": "ops"}]}),
        )
        .await,
        400,
        "ACL role ID does not match request path",
    );

    // A token linked by role name gets the role's policies, and sees that role only.
    let token = acl_token(
        &root,
        json!({"Type": "client", "Roles": [{"Name": "operators"}]}),
    )
    .await;
    assert_eq!(token["Roles"], json!([{"ID": id, "Name": "operators"}]));
    let member = with_token(&c, token["SecretID"].as_str().unwrap());
    let (policies, _) = get_json(&member, "/v1/acl/policies").await.unwrap();
    assert_eq!(policies[0]["Name"], "ops");
    let (roles, _) = get_json(&member, "/v1/acl/roles").await.unwrap();
    assert_eq!(roles.as_array().unwrap().len(), 1);

    // A renamed role shows its new name on the token.
    expect_ok(
        &json_call(
            &root,
            Method::POST,
            &format!("/v1/acl/role/{id}"),
            &json!({"ID": id, "Name": "operations", "Policies": [{"Name": "ops"}]}),
        )
        .await,
    );
    let (me, _) = get_json(&member, "/v1/acl/token/self").await.unwrap();
    assert_eq!(me["Roles"][0]["Name"], "operations");

    let resp = json_call(
        &root,
        Method::DELETE,
        &format!("/v1/acl/role/{id}"),
        &Value::Null,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (me, _) = get_json(&member, "/v1/acl/token/self").await.unwrap();
    assert_eq!(me["Roles"], Value::Null);
    expect_error(
        &json_call(
            &root,
            Method::DELETE,
            &format!("/v1/acl/role/{id}"),
            &Value::Null,
        )
        .await,
        404,
        "ACL role not found",
    );
}
