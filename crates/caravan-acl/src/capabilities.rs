//! The capability names of the policy language (acl/policy.go, v1.9.7), for callers to check
//! with, and the shorthand expansions.

/// Namespace capabilities.
pub mod namespace {
    pub const DENY: &str = "deny";
    pub const LIST_JOBS: &str = "list-jobs";
    pub const PARSE_JOB: &str = "parse-job";
    pub const READ_JOB: &str = "read-job";
    pub const SUBMIT_JOB: &str = "submit-job";
    pub const DISPATCH_JOB: &str = "dispatch-job";
    pub const READ_LOGS: &str = "read-logs";
    pub const READ_FS: &str = "read-fs";
    pub const ALLOC_EXEC: &str = "alloc-exec";
    pub const ALLOC_NODE_EXEC: &str = "alloc-node-exec";
    pub const ALLOC_LIFECYCLE: &str = "alloc-lifecycle";
    pub const SENTINEL_OVERRIDE: &str = "sentinel-override";
    pub const CSI_REGISTER_PLUGIN: &str = "csi-register-plugin";
    pub const CSI_WRITE_VOLUME: &str = "csi-write-volume";
    pub const CSI_READ_VOLUME: &str = "csi-read-volume";
    pub const CSI_LIST_VOLUME: &str = "csi-list-volume";
    pub const CSI_MOUNT_VOLUME: &str = "csi-mount-volume";
    pub const LIST_SCALING_POLICIES: &str = "list-scaling-policies";
    pub const READ_SCALING_POLICY: &str = "read-scaling-policy";
    pub const READ_JOB_SCALING: &str = "read-job-scaling";
    pub const SCALE_JOB: &str = "scale-job";
    pub const SUBMIT_RECOMMENDATION: &str = "submit-recommendation";

    /// Every valid namespace capability (the last two are Enterprise features CE accepts).
    pub const ALL: &[&str] = &[
        DENY,
        LIST_JOBS,
        PARSE_JOB,
        READ_JOB,
        SUBMIT_JOB,
        DISPATCH_JOB,
        READ_LOGS,
        READ_FS,
        ALLOC_EXEC,
        ALLOC_NODE_EXEC,
        ALLOC_LIFECYCLE,
        CSI_REGISTER_PLUGIN,
        CSI_WRITE_VOLUME,
        CSI_READ_VOLUME,
        CSI_LIST_VOLUME,
        CSI_MOUNT_VOLUME,
        LIST_SCALING_POLICIES,
        READ_SCALING_POLICY,
        READ_JOB_SCALING,
        SCALE_JOB,
        SENTINEL_OVERRIDE,
        SUBMIT_RECOMMENDATION,
    ];

    /// `policy = "read"`.
    pub const READ: &[&str] = &[
        LIST_JOBS,
        PARSE_JOB,
        READ_JOB,
        CSI_LIST_VOLUME,
        CSI_READ_VOLUME,
        READ_JOB_SCALING,
        LIST_SCALING_POLICIES,
        READ_SCALING_POLICY,
    ];

    /// `policy = "write"`: read's set, then these. Not alloc-node-exec, csi-register-plugin or
    /// sentinel-override.
    pub const WRITE_EXTRA: &[&str] = &[
        SCALE_JOB,
        SUBMIT_JOB,
        DISPATCH_JOB,
        READ_LOGS,
        READ_FS,
        ALLOC_EXEC,
        ALLOC_LIFECYCLE,
        CSI_MOUNT_VOLUME,
        CSI_WRITE_VOLUME,
        SUBMIT_RECOMMENDATION,
    ];

    /// `policy = "scale"`.
    pub const SCALE: &[&str] = &[
        LIST_SCALING_POLICIES,
        READ_SCALING_POLICY,
        READ_JOB_SCALING,
        SCALE_JOB,
    ];
}

/// Node pool capabilities.
pub mod node_pool {
    pub const DELETE: &str = "delete";
    pub const DENY: &str = "deny";
    pub const READ: &str = "read";
    pub const WRITE: &str = "write";

    pub const ALL: &[&str] = &[DELETE, DENY, READ, WRITE];
}

/// Host volume capabilities.
pub mod host_volume {
    pub const DENY: &str = "deny";
    pub const MOUNT_READONLY: &str = "mount-readonly";
    pub const MOUNT_READWRITE: &str = "mount-readwrite";

    pub const ALL: &[&str] = &[DENY, MOUNT_READONLY, MOUNT_READWRITE];
}

/// Variables path capabilities.
pub mod variables {
    pub const LIST: &str = "list";
    pub const READ: &str = "read";
    pub const WRITE: &str = "write";
    pub const DESTROY: &str = "destroy";
    pub const DENY: &str = "deny";

    pub const ALL: &[&str] = &[WRITE, READ, LIST, DESTROY, DENY];
}
