//! Go-style flags: Nomad's CLI (Go's flag package) accepts `-flag`, `--flag`, `-flag=value`
//! and `--flag=value` alike, and stops reading flags at the first argument that is not one.
//! clap wants `--` for long flags, so single-dash long flags are rewritten before parsing; and
//! in a command without subcommands, the first positional argument ends the flags (a `--` is
//! inserted before it), so `caravan alloc exec <id> ls -la` runs `ls -la`.

use clap::Command;

/// Rewrites `-name[=v]` to `--name[=v]` for every flag longer than one letter, up to a `--` or
/// the first positional argument of a command without subcommands, before which it inserts
/// `--`. `cmd` (the whole CLI) says which words are subcommands and which flags take a value.
pub fn normalize<I: IntoIterator<Item = String>>(args: I, cmd: &Command) -> Vec<String> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut current = &cmd;
    let mut out = Vec::new();
    let mut passthrough = false;
    // The previous argument was a flag that takes the next one as its value.
    let mut value_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        if arg.len() > 1 && arg.starts_with('-') {
            value_next = !arg.contains('=') && takes_value(current, &arg);
            let is_single_dash_long = !arg.starts_with("--")
                && arg.len() > 2
                && arg[1..].starts_with(|c: char| c.is_ascii_alphabetic());
            if is_single_dash_long {
                out.push(format!("-{arg}"));
            } else {
                out.push(arg);
            }
            continue;
        }
        if let Some(sub) = current.find_subcommand(&arg) {
            current = sub;
        } else if !current.has_subcommands() {
            // Go's flag package: the flags end here; the rest are arguments as given.
            out.push("--".to_owned());
            passthrough = true;
        }
        out.push(arg);
    }
    out
}

/// Whether the flag `arg` (`-x`, `-name`, `--name`; without `=`) of `cmd` reads the next
/// argument as its value.
fn takes_value(cmd: &Command, arg: &str) -> bool {
    let name = arg.trim_start_matches('-');
    let single_letter = !arg.starts_with("--") && name.chars().count() == 1;
    cmd.get_arguments()
        .find(|a| {
            a.get_long() == Some(name)
                || (single_letter && a.get_short().is_some_and(|s| name.starts_with(s)))
        })
        .is_some_and(|a| a.get_action().takes_values() && !a.is_require_equals_set())
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction};

    use super::*;

    fn cli() -> Command {
        let exec = Command::new("exec")
            .arg(Arg::new("task").long("task"))
            .arg(Arg::new("e").short('e').long("e"))
            .arg(
                Arg::new("t")
                    .short('t')
                    .long("t")
                    .num_args(0..=1)
                    .require_equals(true),
            )
            .arg(Arg::new("job").long("job").action(ArgAction::SetTrue))
            .arg(Arg::new("args").num_args(0..).trailing_var_arg(true));
        Command::new("caravan")
            .subcommand(
                Command::new("agent")
                    .arg(Arg::new("dev").long("dev").action(ArgAction::SetTrue))
                    .arg(Arg::new("node").long("node")),
            )
            .subcommand(Command::new("alloc").subcommand(exec))
    }

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()), &cli())
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

    #[test]
    fn stops_at_the_first_positional_of_a_leaf_command() {
        assert_eq!(
            n(&[
                "caravan", "alloc", "exec", "-task", "web", "-t=false", "-job", "ab12", "ls",
                "-la", "-task"
            ]),
            [
                "caravan",
                "alloc",
                "exec",
                "--task",
                "web",
                "--t=false",
                "--job",
                "--",
                "ab12",
                "ls",
                "-la",
                "-task"
            ]
        );
        // A short flag's value is not the first positional; `-t` takes none.
        assert_eq!(
            n(&["caravan", "alloc", "exec", "-e", "none", "-t", "ab12", "sh"]),
            [
                "caravan", "alloc", "exec", "-e", "none", "-t", "--", "ab12", "sh"
            ]
        );
        // The value of a flag that looks like a positional is still a value.
        assert_eq!(
            n(&["caravan", "alloc", "exec", "-task=web", "ab12", "-i"]),
            ["caravan", "alloc", "exec", "--task=web", "--", "ab12", "-i"]
        );
        // A word that is no subcommand of a command with subcommands is left to clap.
        assert_eq!(n(&["caravan", "nope", "-x"]), ["caravan", "nope", "-x"]);
    }
}
