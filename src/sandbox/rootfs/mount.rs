//! The mount plan of a RUN step: pure data, shared by the built-in sandbox (which performs it)
//! and the OCI bundle (which hands it to runc/crun). Unit-tested without privileges.

use nix::mount::MsFlags;
use std::path::PathBuf;

/// What a mount point is in the rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// One mount, in OCI terms (options as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute path inside the rootfs.
    pub destination: &'static str,
    pub fstype: &'static str,
    /// The device name, or for binds the host path.
    pub source: PathBuf,
    pub options: Vec<&'static str>,
    pub kind: Kind,
}

impl Mount {
    pub fn is_bind(&self) -> bool {
        self.options.iter().any(|o| *o == "bind" || *o == "rbind")
    }
}

/// Paths masked in `/proc` and `/sys`: upstream isula-build's list (`constant.go`), which is
/// Docker's plus openEuler kernel extras, and Docker's newer `/sys/devices/virtual/powercap`.
/// Directories get an empty read-only tmpfs, files `/dev/null`.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/config.gz",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/files_panic_enable",
    "/proc/fdthreshold",
    "/proc/fdstat",
    "/proc/fdenable",
    "/proc/signo",
    "/proc/sig_catch",
    "/proc/kbox",
    "/proc/oom_extend",
    "/proc/pin_memory",
    "/sys/firmware",
    "/proc/cpuirqstat",
    "/proc/memstat",
    "/proc/iomem_ext",
    "/proc/livepatch",
    "/proc/net_namespace",
    "/sys/devices/virtual/powercap",
];

/// Paths bound read-only onto themselves (upstream's and Docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The mounts of a step, in order. `hosts`/`resolv` are the host files' copies in the bundle.
pub fn plan(hosts: PathBuf, resolv: PathBuf) -> Vec<Mount> {
    let m = |destination, fstype, source: &str, options: Vec<&'static str>, kind| Mount {
        destination,
        fstype,
        source: PathBuf::from(source),
        options,
        kind,
    };
    vec![
        m(
            "/proc",
            "proc",
            "proc",
            vec!["nosuid", "noexec", "nodev"],
            Kind::Dir,
        ),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            vec!["nosuid", "nodev", "strictatime", "mode=755", "size=65536k"],
            Kind::Dir,
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            vec![
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
            Kind::Dir,
        ),
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            vec!["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            Kind::Dir,
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            vec!["nosuid", "noexec", "nodev"],
            Kind::Dir,
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            vec!["nosuid", "noexec", "nodev", "ro"],
            Kind::Dir,
        ),
        Mount {
            destination: "/etc/hosts",
            fstype: "bind",
            source: hosts,
            options: vec!["rbind", "ro", "nosuid", "nodev", "noexec"],
            kind: Kind::File,
        },
        Mount {
            destination: "/etc/resolv.conf",
            fstype: "bind",
            source: resolv,
            options: vec!["rbind", "ro", "nosuid", "nodev", "noexec"],
            kind: Kind::File,
        },
    ]
}

/// Whether `dest` lies inside the target of an earlier mount of the plan (then its mount point
/// lives on that mount, e.g. a tmpfs, and is not an image change).
pub fn under_earlier(plan: &[Mount], index: usize) -> bool {
    let dest = plan[index].destination;
    plan[..index]
        .iter()
        .any(|m| dest.starts_with(m.destination) && dest[m.destination.len()..].starts_with('/'))
}

/// Split OCI-style options into mount flags and the data string (as runc does).
/// `ro` on a bind needs a second, remount step: the flag is returned and the caller does it.
pub fn parse_options(options: &[&str]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let f = match *o {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "strictatime" => MsFlags::MS_STRICTATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "noatime" => MsFlags::MS_NOATIME,
            "bind" => MsFlags::MS_BIND,
            "rbind" => MsFlags::MS_BIND | MsFlags::MS_REC,
            "rw" => MsFlags::empty(),
            other => {
                data.push(other);
                continue;
            }
        };
        flags |= f;
    }
    (flags, data.join(","))
}

/// The overlay mount data for lower dirs `l0..ln` and `u`/`w` (short names: the caller
/// runs the mount with its cwd in a directory holding symlinks of those names, so paths of any
/// length and with `,`/`:` in them fit in the one page the kernel accepts). `strict` adds the
/// options that keep the upper dir a plain layer diff (no redirect or metacopy xattrs).
pub fn overlay_data(lowers: usize, strict: bool) -> String {
    let lower: Vec<String> = (0..lowers).map(|i| format!("l{i}")).collect();
    let mut s = format!("lowerdir={},upperdir=u,workdir=w", lower.join(":"));
    if strict {
        s.push_str(",index=off,redirect_dir=off,metacopy=off");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_order_and_nesting() {
        let p = plan("/b/hosts".into(), "/b/resolv.conf".into());
        let dests: Vec<&str> = p.iter().map(|m| m.destination).collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/etc/hosts",
                "/etc/resolv.conf"
            ]
        );
        let nested: Vec<bool> = (0..p.len()).map(|i| under_earlier(&p, i)).collect();
        assert_eq!(
            nested,
            [false, false, true, true, true, false, false, false]
        );
        assert!(p[6].is_bind() && p[7].is_bind());
        assert_eq!(p[6].source, PathBuf::from("/b/hosts"));
        assert_eq!(p[6].kind, Kind::File);
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d) = parse_options(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "gid=5"]);
        assert_eq!(f, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(d, "newinstance,ptmxmode=0666,gid=5");
        let (f, d) = parse_options(&["rbind", "ro"]);
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert!(d.is_empty());
        let sys = &plan("/h".into(), "/r".into())[5];
        assert!(parse_options(&sys.options).0.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn overlay_data_uses_short_names() {
        assert_eq!(
            overlay_data(2, false),
            "lowerdir=l0:l1,upperdir=u,workdir=w"
        );
        assert!(overlay_data(1, true).ends_with(",index=off,redirect_dir=off,metacopy=off"));
        // 500 layers still fit in a page.
        assert!(overlay_data(500, true).len() < 4096);
    }

    #[test]
    fn masked_and_readonly_lists_are_docker_compatible() {
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/sys/firmware",
        ] {
            assert!(MASKED_PATHS.contains(&p), "{p}");
        }
        assert!(READONLY_PATHS.contains(&"/proc/sys"));
        assert!(READONLY_PATHS.contains(&"/proc/sysrq-trigger"));
    }
}
