//! The one error type of the crate: every variant names the path or the step that failed, since
//! the message ends up verbatim in a task event or the driver's health description.

use std::io;

/// Why an isolation operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// The spec cannot be used as given (relative root, missing bind source, bad cgroup name…).
    #[error("invalid isolation spec: {0}")]
    Invalid(String),
    /// A host-side operation failed: creating a mount point, a cgroup file, a namespace file…
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// No usable cgroup hierarchy (controller missing, not mounted, not writable).
    #[error("cgroups: {0}")]
    Cgroup(String),
    /// A step between fork and exec failed (the child exited before running the task).
    #[error("isolating the task failed while {step}: {source}")]
    Setup {
        /// The step, e.g. "bind-mounting /usr at /usr".
        step: String,
        /// The errno the step returned.
        #[source]
        source: io::Error,
    },
    /// Every isolation step succeeded but exec itself failed (e.g. the program does not exist
    /// inside the task root).
    #[error("cannot execute {program:?} inside the task root: {source}")]
    Exec {
        /// The program as given to the `Command`.
        program: String,
        /// The errno of exec.
        #[source]
        source: io::Error,
    },
}

impl IsolationError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the error is "no such file or directory" (e.g. a cgroup or process that is gone),
    /// which callers usually treat as "nothing to do".
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::Setup { source, .. } | Self::Exec { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
            Self::Invalid(_) | Self::Cgroup(_) => false,
        }
    }
}
