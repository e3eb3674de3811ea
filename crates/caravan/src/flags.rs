//! Go-style flags: Nomad's CLI (Go's flag package) accepts `-flag`, `--flag`, `-flag=value`
//! and `--flag=value` alike. clap wants `--` for long flags, so single-dash long flags are
//! rewritten before parsing.

/// Rewrites `-name[=v]` to `--name[=v]` for every flag longer than one letter, up to a `--`.
pub fn normalize<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let is_single_dash_long = arg.starts_with('-')
            && !arg.starts_with("--")
            && arg.len() > 2
            && arg[1..].starts_with(|c: char| c.is_ascii_alphabetic());
        if is_single_dash_long {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn rewrites_go_style_flags() {
        assert_eq!(
            n(&[
                "caravan",
                "agent",
                "-dev",
                "-http-port=5000",
                "--node",
                "a",
                "-h",
                "-1"
            ]),
            [
                "caravan",
                "agent",
                "--dev",
                "--http-port=5000",
                "--node",
                "a",
                "-h",
                "-1"
            ]
        );
    }

    #[test]
    fn stops_at_double_dash() {
        assert_eq!(n(&["caravan", "--", "-dev"]), ["caravan", "--", "-dev"]);
    }
}
