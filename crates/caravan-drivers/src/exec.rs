//! `exec`: the task's command isolated by its executor — pid, mount, ipc and uts namespaces, the
//! task directory as its root with the system directories bound read-only and the allocation
//! directory at `/alloc`, and a cgroup holding the task's memory and cpu limits.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::executor::{BindConfig, CgroupConfig, IsolationConfig, LaunchSpec};
use crate::process::{Launcher, recover_task};
use crate::{
    Driver, DriverError, DriverFingerprint, HandleState, TaskConfig, TaskHandle, command_and_args,
};

pub const NAME: &str = "exec";

pub struct Exec {
    launcher: Launcher,
}

impl Exec {
    pub fn new(launcher: Launcher) -> Exec {
        Exec { launcher }
    }
}

/// The cgroup of one task: unique per allocation and task.
pub fn cgroup_name(alloc_id: &str, task: &str) -> String {
    format!("{alloc_id}.{task}")
}

impl Driver for Exec {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fingerprint(&self) -> DriverFingerprint {
        match caravan_isolation::probe() {
            Ok(()) => DriverFingerprint::healthy(NAME),
            Err(reason) => DriverFingerprint::undetected(reason),
        }
    }

    fn validate(
        &self,
        config: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), DriverError> {
        command_and_args(config).map(|_| ())
    }

    fn start(&self, task: TaskConfig) -> BoxFuture<'_, Result<Arc<dyn TaskHandle>, DriverError>> {
        async move {
            let (command, args) = command_and_args(&task.config)?;
            let memory_bytes = task.resources.memory_mb.saturating_mul(1024 * 1024);
            let isolation = IsolationConfig {
                root: task.task_dir.clone(),
                binds: vec![BindConfig {
                    source: task.alloc_dir.join("alloc"),
                    target: "/alloc".into(),
                    read_only: false,
                }],
                hostname: task.task_name.clone(),
                cgroup: Some(CgroupConfig {
                    name: cgroup_name(&task.alloc_id, &task.task_name),
                    memory_bytes,
                    memory_max_bytes: (task.resources.memory_max_mb > task.resources.memory_mb)
                        .then(|| task.resources.memory_max_mb.saturating_mul(1024 * 1024)),
                    cpu_shares: task.resources.cpu_shares.max(2),
                }),
            };
            let spec = LaunchSpec {
                task_name: task.task_name.clone(),
                command,
                args,
                env: task.env.clone(),
                cwd: "/".into(),
                logs: task.logs.clone(),
                exit_file: task.run_dir.join("exit.json"),
                user: task.user.clone(),
                die_with_agent: false,
                agent_pid: 0,
                isolation: Some(isolation),
            };
            let handle = self.launcher.launch(NAME, spec, &task.run_dir).await?;
            Ok(handle as Arc<dyn TaskHandle>)
        }
        .boxed()
    }

    fn recover(&self, state: &HandleState) -> Result<Arc<dyn TaskHandle>, DriverError> {
        recover_task(&self.launcher, NAME, state)
    }
}
