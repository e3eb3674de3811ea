//! caravan-scheduler: pure placement logic over a read-only `State` and a `Planner`.
