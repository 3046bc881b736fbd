//! The default seccomp profile: Docker's (moby `profiles/seccomp/default.json`) as data.
//!
//! Default action `ERRNO(EPERM)`; an allow list; per-architecture extras; groups unlocked by a
//! capability (`--cap-add SYS_ADMIN` allows `mount`, `unshare`, …); `clone` without namespace
//! flags for everybody else, `clone3` answered with `ENOSYS` so libc falls back to `clone`.
//! [`rules_for`] resolves the profile for one capability set and architecture; both the built-in
//! sandbox (libseccomp) and the OCI bundle (runc/crun) are generated from it.

/// `EPERM`: the profile's default errno.
pub const DEFAULT_ERRNO: u32 = 1;

/// One argument condition, as in the OCI runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgCmp {
    /// `args[index] != value`
    Ne(u32, u64),
    /// `args[index] == value`
    Eq(u32, u64),
    /// `(args[index] & mask) == value`
    MaskedEq(u32, u64, u64),
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno(u32),
}

/// A rule of the profile, before resolution.
#[derive(Debug)]
struct Rule {
    names: &'static [&'static str],
    action: Action,
    /// All must hold (AND), as in Docker's profile.
    args: &'static [ArgCmp],
    /// Only on these architectures (Docker's names: amd64, arm64, s390x, …); empty = all.
    arches: &'static [&'static str],
    /// Not on these architectures.
    not_arches: &'static [&'static str],
    /// Only when this capability is in the set.
    cap: Option<&'static str>,
    /// Not when this capability is in the set.
    not_cap: Option<&'static str>,
}

const fn allow(names: &'static [&'static str]) -> Rule {
    Rule {
        names,
        action: Action::Allow,
        args: &[],
        arches: &[],
        not_arches: &[],
        cap: None,
        not_cap: None,
    }
}

const fn allow_on(names: &'static [&'static str], arches: &'static [&'static str]) -> Rule {
    Rule {
        arches,
        ..allow(names)
    }
}

const fn allow_with_cap(names: &'static [&'static str], cap: &'static str) -> Rule {
    Rule {
        cap: Some(cap),
        ..allow(names)
    }
}

const fn allow_if(names: &'static [&'static str], args: &'static [ArgCmp]) -> Rule {
    Rule {
        args,
        ..allow(names)
    }
}

/// Namespace flags `clone` may not carry without CAP_SYS_ADMIN (CLONE_NEWNS|NEWCGROUP|NEWUTS|
/// NEWIPC|NEWUSER|NEWPID|NEWNET).
pub const CLONE_NS_MASK: u64 = 0x7E02_0000;

#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
    "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32",
    "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
    "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32",
    "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
    "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
    "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
    "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
    "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
    "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
    "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
    "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
    "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
    "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
];

static RULES: &[Rule] = &[
    allow(ALLOWED),
    // ptrace & co. are safe on kernels >= 4.8 (the only ones we support).
    allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
    // Any socket family but AF_VSOCK (40).
    allow_if(&["socket"], &[ArgCmp::Ne(0, 40)]),
    allow_if(&["personality"], &[ArgCmp::Eq(0, 0)]),
    allow_if(&["personality"], &[ArgCmp::Eq(0, 8)]),
    allow_if(&["personality"], &[ArgCmp::Eq(0, 0x20000)]),
    allow_if(&["personality"], &[ArgCmp::Eq(0, 0x20008)]),
    allow_if(&["personality"], &[ArgCmp::Eq(0, 0xffff_ffff)]),
    allow_on(&["sync_file_range2", "swapcontext"], &["ppc64le"]),
    allow_on(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        &["arm", "arm64"],
    ),
    allow_on(&["arch_prctl"], &["amd64", "x32"]),
    allow_on(&["modify_ldt"], &["amd64", "x32", "x86"]),
    allow_on(
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        &["s390", "s390x"],
    ),
    allow_on(&["riscv_flush_icache"], &["riscv64"]),
    allow_with_cap(&["open_by_handle_at"], "CAP_DAC_READ_SEARCH"),
    allow_with_cap(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        "CAP_SYS_ADMIN",
    ),
    Rule {
        args: &[ArgCmp::MaskedEq(0, CLONE_NS_MASK, 0)],
        not_arches: &["s390", "s390x"],
        not_cap: Some("CAP_SYS_ADMIN"),
        ..allow(&["clone"])
    },
    // s390 passes clone's flags second.
    Rule {
        args: &[ArgCmp::MaskedEq(1, CLONE_NS_MASK, 0)],
        arches: &["s390", "s390x"],
        not_cap: Some("CAP_SYS_ADMIN"),
        ..allow(&["clone"])
    },
    // ENOSYS: glibc then falls back to clone, whose flags the rule above can inspect.
    Rule {
        action: Action::Errno(38),
        not_cap: Some("CAP_SYS_ADMIN"),
        ..allow(&["clone3"])
    },
    allow_with_cap(&["reboot"], "CAP_SYS_BOOT"),
    allow_with_cap(&["chroot"], "CAP_SYS_CHROOT"),
    allow_with_cap(
        &["delete_module", "init_module", "finit_module"],
        "CAP_SYS_MODULE",
    ),
    allow_with_cap(&["acct"], "CAP_SYS_PACCT"),
    allow_with_cap(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        "CAP_SYS_PTRACE",
    ),
    allow_with_cap(&["iopl", "ioperm"], "CAP_SYS_RAWIO"),
    allow_with_cap(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        "CAP_SYS_TIME",
    ),
    allow_with_cap(&["vhangup"], "CAP_SYS_TTY_CONFIG"),
    allow_with_cap(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        "CAP_SYS_NICE",
    ),
    allow_with_cap(&["syslog"], "CAP_SYSLOG"),
    allow_with_cap(&["bpf"], "CAP_BPF"),
    allow_with_cap(&["perf_event_open"], "CAP_PERFMON"),
];

/// A rule of the profile resolved for one capability set and architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub names: Vec<&'static str>,
    pub action: Action,
    pub args: Vec<ArgCmp>,
}

/// Docker's architecture name for the machine we run on.
pub fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        other => other,
    }
}

/// The profile's rules for `caps` (canonical names) on `arch` (Docker's name).
pub fn rules_for(caps: &[String], arch: &str) -> Vec<Resolved> {
    let has = |c: &str| caps.iter().any(|x| x == c);
    RULES
        .iter()
        .filter(|r| r.arches.is_empty() || r.arches.contains(&arch))
        .filter(|r| !r.not_arches.contains(&arch))
        .filter(|r| r.cap.is_none_or(has))
        .filter(|r| !r.not_cap.is_some_and(has))
        .map(|r| Resolved {
            names: r.names.to_vec(),
            action: r.action,
            args: r.args.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(rules: &[Resolved], name: &str) -> Vec<Vec<ArgCmp>> {
        rules
            .iter()
            .filter(|r| r.action == Action::Allow && r.names.contains(&name))
            .map(|r| r.args.clone())
            .collect()
    }

    #[test]
    fn default_set_denies_mount_and_limits_clone() {
        let caps = crate::sandbox::capabilities::effective_set(&[]);
        let rules = rules_for(&caps, "amd64");
        assert!(allows(&rules, "mount").is_empty());
        assert!(allows(&rules, "unshare").is_empty());
        assert!(allows(&rules, "kexec_load").is_empty());
        assert_eq!(
            allows(&rules, "clone"),
            vec![vec![ArgCmp::MaskedEq(0, CLONE_NS_MASK, 0)]]
        );
        assert!(rules
            .iter()
            .any(|r| r.names == ["clone3"] && r.action == Action::Errno(38)));
        assert_eq!(allows(&rules, "chroot"), vec![Vec::<ArgCmp>::new()]);
        assert_eq!(allows(&rules, "arch_prctl").len(), 1);
        assert!(allows(&rules, "s390_runtime_instr").is_empty());
        assert_eq!(allows(&rules, "socket"), vec![vec![ArgCmp::Ne(0, 40)]]);
    }

    #[test]
    fn sys_admin_unlocks_mount_and_clone() {
        let caps = crate::sandbox::capabilities::effective_set(&["SYS_ADMIN".into()]);
        let rules = rules_for(&caps, "amd64");
        assert_eq!(allows(&rules, "mount"), vec![Vec::<ArgCmp>::new()]);
        assert_eq!(allows(&rules, "clone"), vec![Vec::<ArgCmp>::new()]);
        assert!(!rules.iter().any(|r| r.action != Action::Allow));
    }

    #[test]
    fn s390_checks_second_clone_argument() {
        let caps = crate::sandbox::capabilities::effective_set(&[]);
        let rules = rules_for(&caps, "s390x");
        assert_eq!(
            allows(&rules, "clone"),
            vec![vec![ArgCmp::MaskedEq(1, CLONE_NS_MASK, 0)]]
        );
        assert_eq!(allows(&rules, "s390_runtime_instr").len(), 1);
        assert!(allows(&rules, "arch_prctl").is_empty());
    }
}
