//! The Nomad (go-bexpr) filter expression language: parser and evaluator over JSON.
