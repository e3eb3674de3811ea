//! The search API (`/v1/search`, `/v1/search/fuzzy`): Nomad's search contexts and the request
//! and response bodies.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A search context: a kind of object searched, named as Nomad names it on the wire. The last
/// six are the parts of a job fuzzy search reports on its own (never asked for directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SearchContext {
    Allocs,
    Jobs,
    Nodes,
    NodePools,
    Evals,
    Deployments,
    Plugins,
    Volumes,
    ScalingPolicies,
    Variables,
    Namespaces,
    Groups,
    Services,
    Tasks,
    Images,
    Commands,
    Classes,
}

impl SearchContext {
    /// The contexts `all` stands for, in Nomad's order (also the order of its error message).
    pub const SEARCHABLE: [SearchContext; 11] = [
        SearchContext::Allocs,
        SearchContext::Jobs,
        SearchContext::Nodes,
        SearchContext::NodePools,
        SearchContext::Evals,
        SearchContext::Deployments,
        SearchContext::Plugins,
        SearchContext::Volumes,
        SearchContext::ScalingPolicies,
        SearchContext::Variables,
        SearchContext::Namespaces,
    ];

    /// The context's wire name: a key of `Matches` and `Truncations`.
    pub fn name(self) -> &'static str {
        match self {
            SearchContext::Allocs => "allocs",
            SearchContext::Jobs => "jobs",
            SearchContext::Nodes => "nodes",
            SearchContext::NodePools => "node_pools",
            SearchContext::Evals => "evals",
            // Singular, as in Nomad.
            SearchContext::Deployments => "deployment",
            SearchContext::Plugins => "plugins",
            SearchContext::Volumes => "volumes",
            SearchContext::ScalingPolicies => "scaling_policy",
            SearchContext::Variables => "vars",
            SearchContext::Namespaces => "namespaces",
            SearchContext::Groups => "groups",
            SearchContext::Services => "services",
            SearchContext::Tasks => "tasks",
            SearchContext::Images => "images",
            SearchContext::Commands => "commands",
            SearchContext::Classes => "classes",
        }
    }

    /// The contexts a request's `Context` names: `all`, or one searchable context. Anything
    /// else (the fuzzy sub-contexts, enterprise ones such as `quotas`, an empty string) is
    /// refused with Nomad's message.
    pub fn expand(context: &str) -> Result<Vec<SearchContext>, UnknownSearchContext> {
        if context == "all" {
            return Ok(SearchContext::SEARCHABLE.to_vec());
        }
        SearchContext::SEARCHABLE
            .into_iter()
            .find(|c| c.name() == context)
            .map(|c| vec![c])
            .ok_or_else(|| UnknownSearchContext(context.to_owned()))
    }
}

impl fmt::Display for SearchContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `Context` that is neither `all` nor a searchable context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSearchContext(pub String);

impl std::error::Error for UnknownSearchContext {}

impl fmt::Display for UnknownSearchContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = SearchContext::SEARCHABLE.iter().map(|c| c.name()).collect();
        write!(
            f,
            "context must be one of [{}] or 'all' for all contexts; got {:?}",
            names.join(" "),
            self.0
        )
    }
}

/// The body of `/v1/search`. Nomad decodes its query options from the body too; `Namespace`
/// and `Region` are the ones that matter here (query parameters win over them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SearchRequest {
    pub context: String,
    pub namespace: String,
    pub prefix: String,
    pub region: String,
}

/// The answer of `/v1/search`: per context, the matching IDs (`null` when none matched) and
/// whether there were more.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SearchResponse {
    pub index: u64,
    pub known_leader: bool,
    /// Nanoseconds.
    pub last_contact: i64,
    pub matches: BTreeMap<String, Option<Vec<String>>>,
    pub next_token: String,
    pub truncations: BTreeMap<String, bool>,
}

/// The body of `/v1/search/fuzzy`. `Prefix` (a query option; the `prefix` query parameter wins)
/// is where Nomad starts the UUID listings of the contexts it searches by prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct FuzzySearchRequest {
    pub context: String,
    pub namespace: String,
    pub prefix: String,
    pub region: String,
    pub text: String,
}

/// One fuzzy match: a name (or a UUID), and the IDs of its parents from the namespace down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FuzzyMatch {
    #[serde(rename = "ID")]
    pub id: String,
    /// Left out when empty (`omitempty` in Nomad).
    #[serde(rename = "Scope", skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
}

/// The answer of `/v1/search/fuzzy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct FuzzySearchResponse {
    pub index: u64,
    pub known_leader: bool,
    /// Nanoseconds.
    pub last_contact: i64,
    pub matches: BTreeMap<String, Vec<FuzzyMatch>>,
    pub next_token: String,
    pub truncations: BTreeMap<String, bool>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn contexts_expand_and_refuse_with_nomads_message() {
        assert_eq!(SearchContext::expand("all").unwrap().len(), 11);
        assert_eq!(
            SearchContext::expand("deployment").unwrap(),
            vec![SearchContext::Deployments]
        );
        let err = SearchContext::expand("tasks").unwrap_err();
        assert_eq!(
            err.to_string(),
            "context must be one of [allocs jobs nodes node_pools evals deployment plugins \
             volumes scaling_policy vars namespaces] or 'all' for all contexts; got \"tasks\""
        );
        assert!(SearchContext::expand("").is_err());
        assert!(SearchContext::expand("quotas").is_err());
    }

    #[test]
    fn responses_encode_as_nomad() {
        let resp = SearchResponse {
            index: 7,
            known_leader: true,
            matches: BTreeMap::from([
                ("jobs".to_owned(), Some(vec!["example".to_owned()])),
                ("evals".to_owned(), None),
            ]),
            truncations: BTreeMap::from([("jobs".to_owned(), false), ("evals".to_owned(), false)]),
            ..SearchResponse::default()
        };
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"Index":7,"KnownLeader":true,"LastContact":0,"Matches":{"evals":null,"jobs":["example"]},"NextToken":"","Truncations":{"evals":false,"jobs":false}}"#
        );
        let m = FuzzyMatch {
            id: "default".to_owned(),
            scope: Vec::new(),
        };
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"ID":"default"}"#);
    }
}
