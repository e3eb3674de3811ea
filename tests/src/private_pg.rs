//! A PostgreSQL cluster of one test's own, for tests that stop and restart the database (the
//! run's shared cluster must stay up for the tests running beside them). Built from the binaries
//! `scripts/test.sh` found (`CARAVAN_TEST_PG_BIN`); as root it runs as the `postgres` user, as
//! the script does.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{TempDir, free_port};

pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: TempDir,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as `postgres` when this process is root (initdb refuses root).
fn run(bin: &Path, tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let program = bin.join(tool);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    let out = cmd
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl PrivatePostgres {
    /// initdb and start a cluster on a free 127.0.0.1 port.
    pub fn start() -> anyhow::Result<PrivatePostgres> {
        let bin =
            PathBuf::from(std::env::var("CARAVAN_TEST_PG_BIN").context(
                "CARAVAN_TEST_PG_BIN is not set: run the tests through ./scripts/test.sh",
            )?);
        let dir = TempDir::new("caravan-private-pg")?;
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:", &dir.path_str()])
                .status()?;
            if !status.success() {
                bail!("cannot hand {} to the postgres user", dir.path_str());
            }
        }
        let data = dir.path().join("data");
        let data_s = data.display().to_string();
        run(
            &bin,
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "caravan",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let pg = PrivatePostgres {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        pg.start_server()?;
        Ok(pg)
    }

    fn start_server(&self) -> anyhow::Result<()> {
        let data = self.data.display().to_string();
        let sockets = self.data.display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {sockets} -c fsync=off",
            self.port
        );
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &data,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "-l",
                &format!("{data}/log"),
                "start",
            ],
        )
    }

    /// The superuser URL.
    pub fn admin_url(&self) -> String {
        format!("postgres://caravan@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (connections cut, as a crash or a failover would).
    pub fn stop(&self) -> anyhow::Result<()> {
        let data = self.data.display().to_string();
        run(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "-t", "60", "stop"],
        )
    }

    /// Starts the stopped server again on the same port.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.start_server()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
