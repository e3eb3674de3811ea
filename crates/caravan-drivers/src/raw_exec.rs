//! `raw_exec`: the task's command as a plain child process of its executor, in the task
//! directory, with the task's environment and no isolation.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::executor::LaunchSpec;
use crate::process::{Launcher, recover_task};
use crate::{
    Driver, DriverError, DriverFingerprint, HandleState, TaskConfig, TaskHandle, command_and_args,
};

pub const NAME: &str = "raw_exec";

pub struct RawExec {
    launcher: Launcher,
}

impl RawExec {
    pub fn new(launcher: Launcher) -> RawExec {
        RawExec { launcher }
    }
}

impl Driver for RawExec {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fingerprint(&self) -> DriverFingerprint {
        DriverFingerprint::healthy(NAME)
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
            let spec = LaunchSpec {
                task_name: task.task_name.clone(),
                command,
                args,
                env: task.env.clone(),
                cwd: task.task_dir.clone(),
                logs: task.logs.clone(),
                exit_file: task.run_dir.join("exit.json"),
                user: task.user.clone(),
                die_with_agent: false,
                agent_pid: 0,
                isolation: None,
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
