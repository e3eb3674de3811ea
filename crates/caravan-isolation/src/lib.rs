//! Linux isolation for tasks: namespaces, chroot and bind mounts, cgroup limits. The only crate
//! of the workspace allowed `unsafe` (code that runs between fork and exec).
