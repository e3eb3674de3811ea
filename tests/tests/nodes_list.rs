//! GET /v1/nodes: the stub shape, field selection, prefix, pagination, reverse, filters.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::collections::{BTreeMap, BTreeSet};

use caravan_tests::*;
use serde_json::{Value, json};

/// The NodeListStub of the spec's sample response (seeds/004), drivers trimmed to one.
const SAMPLE_STUB: &str = r#"{ "Address": "10.138.0.5", "CreateIndex": 6, "Datacenter": "dc1",
  "Drain": false, "Drivers": { "raw_exec": { "Attributes": {}, "Detected": true,
  "HealthDescription": "", "Healthy": true, "UpdateTime": "2018-04-11T23:33:48.710448534Z" } },
  "ID": "f7476465-4d6e-c0de-26d0-e383c49be941", "ModifyIndex": 2526, "Name": "nomad-4",
  "NodeClass": "", "SchedulingEligibility": "eligible", "Status": "ready",
  "StatusDescription": "", "Version": "0.8.0-rc1" }"#;

fn ids(nodes: &[api::nodes::NodeListStub]) -> Vec<String> {
    nodes.iter().map(|n| n.id.clone()).collect()
}

/// Registers `n` fake nodes named `fake-00`.. with alternating racks r1/r2.
async fn register_fakes(c: &DevCluster, n: usize) -> anyhow::Result<Vec<FakeNode>> {
    let mut grpc = Grpc::connect(&c.rpc_addr).await?;
    let mut out = Vec::new();
    for i in 0..n {
        let rack = if i % 2 == 0 { "r1" } else { "r2" };
        out.push(
            grpc.register_fake(&format!("fake-{i:02}"), "", &[("rack", rack)])
                .await?,
        );
    }
    Ok(out)
}

#[tokio::test]
async fn list_shows_the_dev_node_ready_with_the_stub_shape() {
    let c = DevCluster::start().await.unwrap();
    let (list, meta) = get_json(&c.client, "/v1/nodes").await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let stub = &list[0];
    assert_eq!(stub["ID"], c.node_id.as_str());
    assert_eq!(stub["Status"], "ready");
    assert_eq!(stub["SchedulingEligibility"], "eligible");
    assert_eq!(stub["Drain"], false);
    assert_eq!(stub["Datacenter"], "dc1");
    assert_eq!(stub["Address"], "127.0.0.1");
    assert_eq!(stub["NodePool"], "default");
    assert!(!stub["Name"].as_str().unwrap().is_empty());
    assert!(!stub["Version"].as_str().unwrap().is_empty());
    assert!(stub["LastDrain"].is_null());
    assert!(stub["HostVolumes"].is_object());
    let sample: Value = serde_json::from_str(SAMPLE_STUB).unwrap();
    let problems = shape_mismatches(&sample, stub);
    assert!(problems.is_empty(), "{problems:?}\n{stub:#}");
    // NOMAD-BEHAVIOR 2.1: keys the sample predates.
    for key in ["HostVolumes", "LastDrain", "NodePool"] {
        assert!(stub.get(key).is_some(), "{key} missing: {stub:#}");
    }
    // Only with resources=true / os=true.
    for key in ["Attributes", "NodeResources", "ReservedResources"] {
        assert!(
            stub.get(key).is_none(),
            "{key} present by default: {stub:#}"
        );
    }
    let drivers = stub["Drivers"].as_object().unwrap();
    assert!(!drivers.is_empty());
    // Attributes is an object, or null for a driver that is not detected (as in the sample's
    // qemu entry).
    let mut sample_driver = sample["Drivers"]["raw_exec"].clone();
    sample_driver["Attributes"] = Value::Null;
    for (name, d) in drivers {
        let problems = shape_mismatches(&sample_driver, d);
        assert!(problems.is_empty(), "driver {name}: {problems:?}");
        assert!(d["Attributes"].is_object() || d["Attributes"].is_null());
        if d["Detected"] == true {
            assert!(d["Attributes"].is_object(), "driver {name}: {d}");
        }
    }
    assert_eq!(drivers["raw_exec"]["Detected"], true);
    assert_eq!(drivers["raw_exec"]["Healthy"], true);
    // The list index is the nodes table index: at least the node's ModifyIndex.
    assert!(meta.last_index >= stub["ModifyIndex"].as_u64().unwrap());
    assert!(stub["ModifyIndex"].as_u64().unwrap() >= stub["CreateIndex"].as_u64().unwrap());
    assert!(stub["CreateIndex"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn list_field_selection_resources_and_os() {
    let c = DevCluster::start().await.unwrap();
    let (list, _) = get_json(&c.client, "/v1/nodes?resources=true")
        .await
        .unwrap();
    let stub = &list[0];
    let res = &stub["NodeResources"];
    assert!(res["Cpu"]["CpuShares"].as_i64().unwrap() > 0, "{res:#}");
    assert!(res["Memory"]["MemoryMB"].as_i64().unwrap() > 0, "{res:#}");
    assert!(res["Disk"]["DiskMB"].as_i64().unwrap() > 0, "{res:#}");
    assert!(stub["ReservedResources"].is_object(), "{stub:#}");
    assert!(stub["ReservedResources"]["Cpu"].is_object(), "{stub:#}");
    assert!(stub.get("Attributes").is_none());

    let (list, _) = get_json(&c.client, "/v1/nodes?os=true").await.unwrap();
    let stub = &list[0];
    let attrs = stub["Attributes"].as_object().unwrap();
    assert_eq!(attrs.keys().collect::<Vec<_>>(), ["os.name"], "{attrs:?}");
    let full = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(attrs["os.name"], full["Attributes"]["os.name"]);
    assert!(!attrs["os.name"].as_str().unwrap().is_empty());
    assert!(stub.get("NodeResources").is_none());

    let (list, _) = get_json(&c.client, "/v1/nodes?os=true&resources=1")
        .await
        .unwrap();
    assert!(list[0]["NodeResources"].is_object() && list[0]["Attributes"].is_object());
    let (list, _) = get_json(&c.client, "/v1/nodes?os=false&resources=false")
        .await
        .unwrap();
    assert!(list[0].get("NodeResources").is_none() && list[0].get("Attributes").is_none());

    // The typed client sees the same.
    let (typed, _) = c
        .client
        .nodes()
        .list_with_fields(&QueryOptions::new(), true, true)
        .await
        .unwrap();
    assert!(typed[0].node_resources.is_some() && typed[0].reserved_resources.is_some());
    assert_eq!(typed[0].attributes.as_ref().unwrap().len(), 1);
}

#[tokio::test]
async fn list_prefix_filters_by_id() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let mut fakes = Vec::new();
    for (i, prefix) in ["ab", "ab", "abcd", "cd", "ef01"].iter().enumerate() {
        fakes.push(
            grpc.register_fake(&format!("fake-{i}"), prefix, &[])
                .await
                .unwrap(),
        );
    }
    let nodes = c.client.nodes();
    let all = ids(&nodes.list(&QueryOptions::new()).await.unwrap().0);
    assert_eq!(all.len(), 6);
    for prefix in ["ab", "abcd", "cd", "ef", "ef01", "AB"] {
        let want: Vec<String> = all
            .iter()
            .filter(|id| id.starts_with(&prefix.to_lowercase()))
            .cloned()
            .collect();
        let (got, meta) = nodes
            .list(&QueryOptions::new().prefix(prefix))
            .await
            .unwrap();
        if prefix == "AB" {
            // Upper-case hex is still hex; IDs are lower case, so whether it matches is the
            // server's choice, but it must not be an error and must not match other prefixes.
            assert!(ids(&got).iter().all(|id| id.starts_with("ab")), "{got:?}");
            continue;
        }
        assert_eq!(ids(&got), want, "prefix {prefix}");
        assert!(meta.last_index > 0);
    }
    // A prefix through the dash, and the full ID.
    let target = &fakes[2].id;
    for prefix in [&target[..11], target.as_str()] {
        let (got, _) = nodes
            .list(&QueryOptions::new().prefix(prefix))
            .await
            .unwrap();
        assert_eq!(ids(&got), std::slice::from_ref(target), "prefix {prefix}");
    }
    // A prefix with pagination walks just the matching nodes.
    let ab: Vec<String> = all
        .iter()
        .filter(|id| id.starts_with("ab"))
        .cloned()
        .collect();
    let paged = nodes
        .list_all(&QueryOptions::new().prefix("ab").per_page(1))
        .await
        .unwrap();
    assert_eq!(ids(&paged), ab);
    // A prefix nothing has.
    let (got, _) = nodes
        .list(&QueryOptions::new().prefix("0000"))
        .await
        .unwrap();
    let want: Vec<_> = all.iter().filter(|id| id.starts_with("0000")).collect();
    assert_eq!(got.len(), want.len());
}

/// Walks all pages; returns the pages and the tokens seen.
async fn walk(
    client: &Client,
    q: &QueryOptions,
) -> anyhow::Result<(Vec<Vec<String>>, Vec<String>)> {
    let mut q = q.clone();
    let mut pages = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..100 {
        let (page, meta) = client.nodes().list(&q).await?;
        pages.push(ids(&page));
        if meta.next_token.is_empty() {
            return Ok((pages, tokens));
        }
        tokens.push(meta.next_token.clone());
        q.next_token = meta.next_token;
    }
    anyhow::bail!("more than 100 pages: {pages:?}")
}

#[tokio::test]
async fn list_pagination_walks_every_page_once() {
    let c = DevCluster::start().await.unwrap();
    register_fakes(&c, 25).await.unwrap();
    let (all, _) = c.client.nodes().list(&QueryOptions::new()).await.unwrap();
    let all = ids(&all);
    assert_eq!(all.len(), 26);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "the list is in ascending ID order");

    for per_page in [1u32, 7, 13, 25, 26, 100] {
        let (pages, tokens) = walk(&c.client, &QueryOptions::new().per_page(per_page))
            .await
            .unwrap();
        let flat: Vec<String> = pages.concat();
        assert_eq!(flat, all, "per_page {per_page}");
        let expected_pages = 26usize.div_ceil(per_page as usize);
        assert_eq!(
            pages.len(),
            expected_pages,
            "per_page {per_page}: {pages:?}"
        );
        for (i, page) in pages.iter().enumerate() {
            if i + 1 < pages.len() {
                assert_eq!(page.len(), per_page as usize);
                // The token is the ID of the first node of the next page.
                assert_eq!(tokens[i], pages[i + 1][0], "per_page {per_page}");
            } else {
                assert!(!page.is_empty(), "an empty last page: {pages:?}");
            }
        }
        let unique: BTreeSet<&String> = tokens.iter().collect();
        assert_eq!(unique.len(), tokens.len(), "a token repeated: {tokens:?}");
    }

    // The last page has no X-Nomad-Nexttoken header at all; the others do.
    let resp = c
        .client
        .get("/v1/nodes", &QueryOptions::new().per_page(20))
        .await
        .unwrap();
    let token = resp.header("X-Nomad-Nexttoken").unwrap().to_owned();
    assert_eq!(token, all[20]);
    let resp = c
        .client
        .get(
            "/v1/nodes",
            &QueryOptions::new().per_page(20).next_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("x-nomad-nexttoken").is_none(),
        "{:?}",
        resp.headers
    );
    let page: Vec<Value> = resp.json().unwrap();
    assert_eq!(page.len(), 6);

    // A token between two IDs resumes at the next one.
    let between = format!("{}0", &all[10][..35]);
    let (page, _) = c
        .client
        .nodes()
        .list(&QueryOptions::new().per_page(3).next_token(&between))
        .await
        .unwrap();
    let want: Vec<String> = all
        .iter()
        .filter(|id| id.as_str() >= between.as_str())
        .take(3)
        .cloned()
        .collect();
    assert_eq!(ids(&page), want);

    // The typed helper follows the tokens too.
    let everything = c
        .client
        .nodes()
        .list_all(&QueryOptions::new().per_page(4))
        .await
        .unwrap();
    assert_eq!(ids(&everything), all);
}

#[tokio::test]
async fn list_pagination_terminates_while_nodes_come_and_go() {
    let c = DevCluster::start().await.unwrap();
    register_fakes(&c, 20).await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let nodes = c.client.nodes();
    let (before, _) = nodes.list(&QueryOptions::new()).await.unwrap();
    let before = ids(&before);

    let mut q = QueryOptions::new().per_page(4);
    let mut seen: Vec<String> = Vec::new();
    let mut purged: BTreeSet<String> = BTreeSet::new();
    let mut added: BTreeSet<String> = BTreeSet::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 50, "the walk does not end: {seen:?}");
        let (page, meta) = nodes.list(&q).await.unwrap();
        for id in ids(&page) {
            assert!(!seen.contains(&id), "{id} returned twice");
            if let Some(last) = seen.last() {
                assert!(&id > last, "the walk went backwards: {id} after {last}");
            }
            seen.push(id);
        }
        if meta.next_token.is_empty() {
            break;
        }
        // Between pages: one node added, one not yet seen purged, one already seen purged.
        let fresh = grpc
            .register_fake(&format!("late-{pages}"), "", &[])
            .await
            .unwrap();
        added.insert(fresh.id);
        if let Some(ahead) = before
            .iter()
            .find(|id| **id > meta.next_token && !purged.contains(*id) && **id != c.node_id)
        {
            nodes.purge(ahead, &WriteOptions::default()).await.unwrap();
            purged.insert(ahead.clone());
        }
        if let Some(behind) = seen
            .iter()
            .find(|id| !purged.contains(*id) && **id != c.node_id)
            .cloned()
        {
            nodes
                .purge(&behind, &WriteOptions::default())
                .await
                .unwrap();
            purged.insert(behind);
        }
        q.next_token = meta.next_token;
    }
    // Every node that was there before and was never purged was seen, exactly once.
    for id in &before {
        if !purged.contains(id) {
            assert!(seen.contains(id), "{id} was skipped");
        }
    }
    // Nothing appears that never existed.
    for id in &seen {
        assert!(
            before.contains(id) || added.contains(id),
            "{id} came from nowhere"
        );
    }
    assert!(!purged.is_empty() && !added.is_empty());
}

#[tokio::test]
async fn list_reverse_gives_descending_ids() {
    let c = DevCluster::start().await.unwrap();
    register_fakes(&c, 9).await.unwrap();
    let nodes = c.client.nodes();
    let (fwd, _) = nodes.list(&QueryOptions::new()).await.unwrap();
    let fwd = ids(&fwd);
    let (rev, _) = nodes
        .list(&QueryOptions::new().reverse(true))
        .await
        .unwrap();
    let rev = ids(&rev);
    let mut want = fwd.clone();
    want.reverse();
    assert_eq!(rev, want);
    // Paging in reverse walks the same descending order.
    let (pages, tokens) = walk(&c.client, &QueryOptions::new().reverse(true).per_page(3))
        .await
        .unwrap();
    assert_eq!(pages.concat(), want);
    assert_eq!(tokens.len(), 3);
    // reverse=1 is not `true` (NOMAD-BEHAVIOR 8.2): ascending.
    let resp = c
        .client
        .get("/v1/nodes?reverse=1", &QueryOptions::new())
        .await
        .unwrap();
    let page: Vec<api::nodes::NodeListStub> = resp.json().unwrap();
    assert_eq!(ids(&page), fwd);
}

#[tokio::test]
async fn list_filter_expressions_narrow_server_side() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    // name -> (status, has os.name, rack)
    let mut model: BTreeMap<String, (String, bool, Option<String>)> = BTreeMap::new();
    let dev = c
        .client
        .nodes()
        .info(&c.node_id, &QueryOptions::new())
        .await
        .unwrap()
        .0;
    model.insert(
        dev.name.clone(),
        (
            "ready".into(),
            true,
            dev.meta.as_ref().and_then(|m| m.get("rack").cloned()),
        ),
    );
    for i in 0..6 {
        let rack = if i % 2 == 0 { "r1" } else { "r2" };
        let n = grpc
            .register_fake(&format!("fake-{i}"), "", &[("rack", rack)])
            .await
            .unwrap();
        model.insert(n.name, ("ready".into(), true, Some(rack.into())));
    }
    // Two without attributes or meta, one of them still initializing.
    for (name, status) in [("bare-ready", "ready"), ("bare-init", "initializing")] {
        let node = FakeNode {
            id: uuid_with_prefix(""),
            secret_id: uuid_with_prefix(""),
            name: name.into(),
        };
        grpc.register(&json!({
            "ID": node.id, "SecretID": node.secret_id, "Name": name,
            "Datacenter": "dc1", "Status": status,
        }))
        .await
        .unwrap();
        model.insert(name.into(), (status.into(), false, None));
    }
    let total = model.len();

    type Pred = fn(&str, &(String, bool, Option<String>)) -> bool;
    let cases: Vec<(&str, Pred)> = vec![
        (r#"Status == "ready""#, |_, m| m.0 == "ready"),
        (r#"Status != "ready""#, |_, m| m.0 != "ready"),
        (r#"Attributes["os.name"] is not empty"#, |_, m| m.1),
        (r#"Attributes["os.name"] is empty"#, |_, m| !m.1),
        (r#"Name matches "^fake""#, |n, _| n.starts_with("fake")),
        (r#"Name not matches "^fake""#, |n, _| !n.starts_with("fake")),
        (r#"Meta.rack == "r1""#, |_, m| m.2.as_deref() == Some("r1")),
        (r#"Meta["rack"] == "r2""#, |_, m| {
            m.2.as_deref() == Some("r2")
        }),
        (r#"Meta.rack == "r1" and Name matches "[024]$""#, |n, m| {
            m.2.as_deref() == Some("r1")
                && (n.ends_with('0') || n.ends_with('2') || n.ends_with('4'))
        }),
        (r#"Meta.rack == "r1" or Name == "bare-init""#, |n, m| {
            m.2.as_deref() == Some("r1") || n == "bare-init"
        }),
        (r#"not (Meta.rack == "r1")"#, |_, m| {
            m.2.as_deref() != Some("r1")
        }),
        (
            r#"not Name matches "^fake" and Status == "ready""#,
            |n, m| !n.starts_with("fake") && m.0 == "ready",
        ),
        (
            r#"(Meta.rack == "r1" or Meta.rack == "r2") and not (Name == "fake-0" or Name == "fake-1")"#,
            |n, m| m.2.is_some() && n != "fake-0" && n != "fake-1",
        ),
        (r#"Name contains "bare""#, |n, _| n.contains("bare")),
        (r#""rack" in Meta"#, |_, m| m.2.is_some()),
        (r#"Datacenter == "dc1""#, |_, _| true),
        (r#"SchedulingEligibility == "ineligible""#, |_, _| false),
    ];
    for (filter, pred) in cases {
        let (got, _) = c
            .client
            .nodes()
            .list(&QueryOptions::new().filter(filter))
            .await
            .unwrap_or_else(|e| panic!("filter {filter}: {e}"));
        let got: BTreeSet<String> = got.into_iter().map(|n| n.name).collect();
        let want: BTreeSet<String> = model
            .iter()
            .filter(|(n, m)| pred(n, m))
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(got, want, "filter {filter}");
        assert!(
            got.len() < total || filter.contains("dc1"),
            "filter {filter} narrowed nothing"
        );
    }

    // The filter applies before paging: full pages of matches only.
    let q = QueryOptions::new()
        .filter(r#"Name matches "^fake""#)
        .per_page(4);
    let all = c.client.nodes().list_all(&q).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|n| n.name.starts_with("fake")));
    let (first, meta) = c.client.nodes().list(&q).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(!meta.next_token.is_empty());
}
