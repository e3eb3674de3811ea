//! Label matching: exact labels first, then the closest glob (acl/acl.go
//! `findClosestMatchingGlob`, with ryanuber/go-glob v1.0.0 as the matcher).

use std::collections::{BTreeMap, BTreeSet};

pub(crate) type CapSet = BTreeSet<String>;

/// go-glob: `*` matches any run (empty too), nothing else is special. The literal head must be a
/// prefix, middle parts are found in order (first occurrence, no backtracking), and the tail
/// must end what is left.
pub(crate) fn glob_match(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some((last, leading)) = parts.split_last() else {
        return false;
    };
    if leading.is_empty() {
        return subject == pattern;
    }
    let leading_glob = pattern.starts_with('*');
    let trailing_glob = pattern.ends_with('*');
    let mut rest = subject;
    for (i, part) in leading.iter().enumerate() {
        let Some(idx) = rest.find(part) else {
            return false;
        };
        if i == 0 && !leading_glob && idx != 0 {
            return false;
        }
        rest = &rest[idx + part.len()..];
    }
    trailing_glob || rest.ends_with(last)
}

/// How far a glob is from the name: the name's length less the glob's literal characters.
fn difference(name: &str, glob: &str) -> usize {
    let literal = glob.len() - glob.bytes().filter(|b| *b == b'*').count();
    name.len().saturating_sub(literal)
}

/// Capability sets keyed by label, the globs apart.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    exact: BTreeMap<String, CapSet>,
    globs: BTreeMap<String, CapSet>,
}

impl Rules {
    /// The set for a label, created empty: a label with no capabilities still wins its name.
    pub fn entry(&mut self, label: &str, glob: bool) -> &mut CapSet {
        let table = if glob {
            &mut self.globs
        } else {
            &mut self.exact
        };
        table.entry(label.to_owned()).or_default()
    }

    /// The set that applies to `name`: its exact label, else the closest matching glob. Ties
    /// go to the byte-wise greatest label, which is what Nomad's sort gives in practice
    /// (ACL.md §5.4) but here holds for any number of matches.
    pub fn matching(&self, name: &str) -> Option<&CapSet> {
        if let Some(set) = self.exact.get(name) {
            return Some(set);
        }
        let mut best: Option<(usize, &CapSet)> = None;
        for (glob, set) in &self.globs {
            if !glob_match(glob, name) {
                continue;
            }
            let d = difference(name, glob);
            // Ascending order: `<=` lets a later (greater) label take a tie.
            if best.is_none_or(|(b, _)| d <= b) {
                best = Some((d, set));
            }
        }
        best.map(|(_, set)| set)
    }

    /// Whether any set, exact or glob, satisfies `f`.
    pub fn any(&self, f: impl Fn(&CapSet) -> bool) -> bool {
        self.exact.values().chain(self.globs.values()).any(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_glob_semantics() {
        assert!(glob_match("*", ""));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("prod-api-*", "prod-api-services"));
        assert!(glob_match("*-api-services", "prod-api-services"));
        assert!(!glob_match("prod-api", "prod-api-services"));
        assert!(glob_match("production-*", "production-api"));
        assert!(!glob_match("prod-*", "production-api"));
        assert!(glob_match("production-*-api", "production-admin-api"));
        assert!(glob_match("*admin*", "production-admin-api"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxcyyb"));
        // Parts do not overlap.
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("a**", "a"));
        assert!(glob_match("ns\u{0}*/bar", "ns\u{0}foo/bar"));
    }

    #[test]
    fn differences_from_nomads_tests() {
        assert_eq!(difference("production-api", "production-*"), 3);
        assert_eq!(difference("production-admin-api", "production-*"), 9);
        assert_eq!(difference("production-admin-api", "production-**"), 9);
        assert_eq!(difference("production-admin-api", "*"), 20);
        assert_eq!(difference("production-admin-api", "*admin*"), 15);
        assert_eq!(difference("prod-api-services", "*-api-services"), 4);
        assert_eq!(difference("prod-api-services", "prod-api-*"), 8);
    }

    fn rules(labels: &[(&str, &str)]) -> Rules {
        let mut r = Rules::default();
        for (label, cap) in labels {
            r.entry(label, label.contains('*'))
                .insert((*cap).to_owned());
        }
        r
    }

    fn winner(r: &Rules, name: &str) -> Option<String> {
        r.matching(name).and_then(|s| s.iter().next().cloned())
    }

    #[test]
    fn exact_then_closest_then_greatest() {
        let r = rules(&[
            ("*", "star"),
            ("prod-*", "prod"),
            ("prod-api", "exact"),
            ("*-api", "api"),
        ]);
        assert_eq!(winner(&r, "prod-api").as_deref(), Some("exact"));
        assert_eq!(winner(&r, "prod-web").as_deref(), Some("prod"));
        assert_eq!(winner(&r, "dev-api").as_deref(), Some("api"));
        assert_eq!(winner(&r, "dev").as_deref(), Some("star"));
        // Equal differences: the byte-wise greater label wins, whatever the insertion order.
        let r = rules(&[("pro*", "pro"), ("*api", "api")]);
        assert_eq!(winner(&r, "proapi").as_deref(), Some("pro"));
        let r = rules(&[("*z", "z"), ("a*", "a")]);
        assert_eq!(winner(&r, "az").as_deref(), Some("a"));
        assert_eq!(winner(&rules(&[("b*", "x")]), "a"), None);
    }
}
