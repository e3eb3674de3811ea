//! Randomised round trips: whatever the server builds must read back identically from its own
//! JSON (the state store and the gRPC layer carry these documents as JSON bytes).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use caravan_structs::*;
use proptest::prelude::*;

fn time() -> impl Strategy<Value = Time> {
    prop_oneof![
        Just(Time::ZERO),
        (0i64..4_102_444_800, 0u32..1_000_000_000, -720i32..840)
            .prop_map(|(s, n, off)| Time::from_unix(s, i64::from(n)).with_offset(off * 60)),
    ]
}

fn small_map() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    proptest::option::of(proptest::collection::btree_map(
        "[a-z.]{1,8}",
        ".{0,8}",
        0..4,
    ))
}

prop_compose! {
    fn node()(
        id in "[0-9a-f-]{36}",
        name in ".{0,12}",
        attrs in small_map(),
        meta in small_map(),
        drain in proptest::option::of((any::<i64>(), any::<bool>(), time(), time())),
        events in proptest::collection::vec((any::<u64>(), ".{0,10}", time()), 0..3),
        status_updated_at in any::<i64>(),
        eligible in any::<bool>(),
    ) -> Node {
        Node {
            id,
            name,
            attributes: attrs,
            meta,
            drain_strategy: drain.map(|(deadline, ignore, force, started)| DrainStrategy {
                deadline,
                force_deadline: force,
                ignore_system_jobs: ignore,
                started_at: started,
            }),
            events: Some(
                events
                    .into_iter()
                    .map(|(create_index, message, timestamp)| NodeEvent {
                        create_index,
                        message,
                        timestamp,
                        ..Default::default()
                    })
                    .collect(),
            ),
            status_updated_at,
            scheduling_eligibility: if eligible {
                NODE_SCHEDULING_ELIGIBLE.into()
            } else {
                NODE_SCHEDULING_INELIGIBLE.into()
            },
            ..Default::default()
        }
    }
}

proptest! {
    #[test]
    fn node_round_trips(n in node()) {
        let json = serde_json::to_string(&n).unwrap();
        let back: Node = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &n);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(v["Drain"].as_bool(), Some(n.drain_strategy.is_some()));
    }

    #[test]
    fn task_state_round_trips(
        finished in time(),
        started in time(),
        restarts in any::<u64>(),
        exit_code in any::<i64>(),
        delay in any::<i64>(),
    ) {
        let mut ev = TaskEvent::new(task_event::TERMINATED, 1);
        ev.exit_code = exit_code;
        ev.start_delay = delay;
        let s = TaskState {
            state: TASK_STATE_DEAD.into(),
            finished_at: finished,
            started_at: started,
            restarts,
            events: Some(vec![ev]),
            ..Default::default()
        };
        let back: TaskState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn stub_address_is_the_host_of_any_socket_address(addr in any::<SocketAddr>()) {
        let n = Node { http_addr: addr.to_string(), ..Default::default() };
        let host = n.stub(NodeStubFields::default()).address;
        // Go's SplitHostPort keeps an IPv6 zone as part of the host, and so do we.
        let want = match addr {
            SocketAddr::V6(a) if a.scope_id() != 0 => format!("{}%{}", a.ip(), a.scope_id()),
            _ => addr.ip().to_string(),
        };
        prop_assert_eq!(host, want);
    }
}
