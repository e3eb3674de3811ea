//! Version constraints for the `version` and `semver` constraint operands, with the semantics
//! of HashiCorp's go-version (`version`: `~>`, pre-releases only match pre-release
//! constraints) and of Nomad's strict semver variant (`semver`: no `~>`, pre-releases ordered
//! as semver orders them).

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

const PRERELEASE_OR_LETTERS: &str = r"(?:-([0-9]+[0-9A-Za-z\-~]*(?:\.[0-9A-Za-z\-~]+)*)|(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(?:\.[0-9A-Za-z\-~]+)*)))?";
const METADATA: &str = r"(?:\+([0-9A-Za-z\-~]+(?:\.[0-9A-Za-z\-~]+)*))?";

static VERSION_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^v?([0-9]+(?:\.[0-9]+)*?){PRERELEASE_OR_LETTERS}{METADATA}$"
    ))
    .ok()
});

static SEMVER_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^v?([0-9]+(?:\.[0-9]+){{0,2}})(?:-([0-9A-Za-z\-~]+(?:\.[0-9A-Za-z\-~]+)*))?{METADATA}$"
    ))
    .ok()
});

static CONSTRAINT_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^\s*(>=|<=|!=|~>|=|>|<)?\s*(\S+)\s*$").ok());

/// A parsed version: numeric segments (at least three, zero-padded), how many were written,
/// and the pre-release tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    segments: Vec<i64>,
    written: usize,
    pre: String,
}

impl Version {
    /// go-version's lenient parse (`1`, `1.2.3.4`, `v1.2-beta`, `1.2.3+meta`).
    pub fn parse(s: &str) -> Option<Version> {
        let re = VERSION_RE.as_ref()?;
        let caps = re.captures(s)?;
        let pre = caps
            .get(2)
            .or_else(|| caps.get(4))
            .map_or("", |m| m.as_str());
        Version::from_parts(caps.get(1)?.as_str(), pre)
    }

    /// Strict semver parse (at most three segments, `-pre`, `+meta`).
    pub fn parse_semver(s: &str) -> Option<Version> {
        let re = SEMVER_RE.as_ref()?;
        let caps = re.captures(s)?;
        let pre = caps.get(2).map_or("", |m| m.as_str());
        Version::from_parts(caps.get(1)?.as_str(), pre)
    }

    fn from_parts(segments: &str, pre: &str) -> Option<Version> {
        let mut parsed = Vec::new();
        for seg in segments.split('.') {
            parsed.push(seg.parse::<i64>().ok()?);
        }
        let written = parsed.len();
        while parsed.len() < 3 {
            parsed.push(0);
        }
        Some(Version {
            segments: parsed,
            written,
            pre: pre.to_owned(),
        })
    }

    fn compare(&self, other: &Version) -> Ordering {
        let n = self.segments.len().max(other.segments.len());
        for i in 0..n {
            let l = self.segments.get(i).copied().unwrap_or(0);
            let r = other.segments.get(i).copied().unwrap_or(0);
            match l.cmp(&r) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_prereleases(&self.pre, &other.pre),
        }
    }

    fn same_segments(&self, other: &Version) -> bool {
        let n = self.segments.len().max(other.segments.len());
        (0..n).all(|i| {
            self.segments.get(i).copied().unwrap_or(0)
                == other.segments.get(i).copied().unwrap_or(0)
        })
    }
}

fn compare_prereleases(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let pa: Vec<&str> = a.split('.').collect();
    let pb: Vec<&str> = b.split('.').collect();
    for i in 0..pa.len().max(pb.len()) {
        let o = compare_part(
            pa.get(i).copied().unwrap_or(""),
            pb.get(i).copied().unwrap_or(""),
        );
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn compare_part(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let na = a.parse::<i64>().ok();
    let nb = b.parse::<i64>().ok();
    if a.is_empty() {
        return if nb.is_some() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    if b.is_empty() {
        return if na.is_some() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    match (na, nb) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Pessimistic,
}

/// A comma-separated list of version constraints, all of which must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConstraints {
    parts: Vec<(Op, Version)>,
    semver: bool,
}

impl VersionConstraints {
    /// go-version constraints (`>= 1.2, < 2`, `~> 1.4`).
    pub fn parse(s: &str) -> Option<VersionConstraints> {
        VersionConstraints::parse_with(s, false)
    }

    /// Nomad's semver constraints (no `~>`, strict versions).
    pub fn parse_semver(s: &str) -> Option<VersionConstraints> {
        VersionConstraints::parse_with(s, true)
    }

    fn parse_with(s: &str, semver: bool) -> Option<VersionConstraints> {
        let re = CONSTRAINT_RE.as_ref()?;
        let mut parts = Vec::new();
        for piece in s.split(',') {
            let caps = re.captures(piece)?;
            let op = match caps.get(1).map_or("", |m| m.as_str()) {
                "" | "=" => Op::Eq,
                "!=" => Op::Ne,
                ">" => Op::Gt,
                "<" => Op::Lt,
                ">=" => Op::Ge,
                "<=" => Op::Le,
                "~>" if !semver => Op::Pessimistic,
                _ => return None,
            };
            let v = caps.get(2)?.as_str();
            let version = if semver {
                Version::parse_semver(v)?
            } else {
                Version::parse(v)?
            };
            parts.push((op, version));
        }
        Some(VersionConstraints { parts, semver })
    }

    /// Whether `v` meets every constraint.
    pub fn check(&self, v: &Version) -> bool {
        self.parts.iter().all(|(op, c)| {
            if self.semver {
                check_semver(*op, v, c)
            } else {
                check_go_version(*op, v, c)
            }
        })
    }
}

/// go-version's rule: a pre-release only satisfies an ordering constraint that names a
/// pre-release of the same segments.
fn prerelease_ok(v: &Version, c: &Version) -> bool {
    match (!v.pre.is_empty(), !c.pre.is_empty()) {
        (true, true) => v.same_segments(c),
        (true, false) => false,
        _ => true,
    }
}

fn check_go_version(op: Op, v: &Version, c: &Version) -> bool {
    let ord = v.compare(c);
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => prerelease_ok(v, c) && ord == Ordering::Greater,
        Op::Lt => prerelease_ok(v, c) && ord == Ordering::Less,
        Op::Ge => prerelease_ok(v, c) && ord != Ordering::Less,
        Op::Le => prerelease_ok(v, c) && ord != Ordering::Greater,
        Op::Pessimistic => pessimistic(v, c),
    }
}

fn check_semver(op: Op, v: &Version, c: &Version) -> bool {
    let ord = v.compare(c);
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Lt => ord == Ordering::Less,
        Op::Ge => ord != Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Pessimistic => false,
    }
}

/// `~> 1.2.3` means `>= 1.2.3, < 1.3`; `~> 1.2` means `>= 1.2, < 2`.
fn pessimistic(v: &Version, c: &Version) -> bool {
    if !prerelease_ok(v, c) || (!c.pre.is_empty() && v.pre.is_empty()) {
        return false;
    }
    if v.compare(c) == Ordering::Less {
        return false;
    }
    let cs = c.segments.len();
    if cs > v.segments.len() {
        return false;
    }
    let fixed = c.written.saturating_sub(1);
    if (0..fixed).any(|i| v.segments[i] != c.segments[i]) {
        return false;
    }
    c.segments[cs - 1] <= v.segments[cs - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: &str, v: &str) -> bool {
        VersionConstraints::parse(c)
            .unwrap()
            .check(&Version::parse(v).unwrap())
    }

    #[test]
    fn go_version_operators() {
        assert!(ok(">= 1.2, < 2", "1.5.0"));
        assert!(!ok(">= 1.2, < 2", "2.0"));
        assert!(ok("= 1.2", "1.2.0"));
        assert!(ok("1.2", "v1.2.0"));
        assert!(ok("!= 1.2", "1.3"));
        assert!(ok("~> 1.2", "1.9"));
        assert!(!ok("~> 1.2", "2.0"));
        assert!(ok("~> 1.2.3", "1.2.9"));
        assert!(!ok("~> 1.2.3", "1.3.0"));
        assert!(!ok("> 3.10", "4.15.0-1021-aws"));
        assert!(ok("> 3.10", "4.15.0"));
        assert!(ok(">= 1.0.0-beta1", "1.0.0-beta2"));
        assert!(!ok(">= 1.0", "1.1.0-beta"));
        assert!(ok("> 1.2.3.4", "1.2.3.5"));
        assert!(VersionConstraints::parse(">= nope").is_none());
        assert!(Version::parse("not-a-version").is_none());
    }

    #[test]
    fn semver_operators() {
        let c = VersionConstraints::parse_semver(">= 1.0.0").unwrap();
        assert!(c.check(&Version::parse("1.1.0-beta").unwrap()));
        assert!(VersionConstraints::parse_semver("~> 1.0").is_none());
        assert!(VersionConstraints::parse_semver(">= 1.2.3.4").is_none());
        let c = VersionConstraints::parse_semver("< 1.0.0").unwrap();
        assert!(c.check(&Version::parse("1.0.0-rc.1").unwrap()));
    }
}
