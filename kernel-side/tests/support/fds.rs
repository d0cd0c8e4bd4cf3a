//! Looking at this process's descriptors. Shared by the kernel-side test files
//! (`#[path = "support/fds.rs"] mod fds;`).

/// The descriptors of this process that are io_uring instances.
pub fn ring_fds() -> Vec<i32> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        if target.to_string_lossy().contains("io_uring") {
            if let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                fds.push(fd);
            }
        }
    }
    fds
}
