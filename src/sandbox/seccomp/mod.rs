//! Seccomp for RUN steps: the default profile ([`profile`]) compiled with libseccomp.
//!
//! libseccomp rather than seccompiler: it resolves syscall names for every architecture
//! openEuler ships (x86_64, aarch64, riscv64, loongarch64, ppc64le, s390x, arm, …) and handles
//! the multiplexed/sub-architecture cases (x86 and x32 on x86_64, arm on aarch64) the way runc
//! and Docker do; seccompiler covers three architectures.

pub mod profile;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use profile::{Action, ArgCmp};

/// The architectures a filter covers on this machine: the native one and the 32-bit ABIs
/// the kernel also accepts (Docker's `archMap`).
pub fn arches() -> Vec<ScmpArch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32],
        "aarch64" => vec![ScmpArch::Aarch64, ScmpArch::Arm],
        "s390x" => vec![ScmpArch::S390X, ScmpArch::S390],
        "mips64" => vec![ScmpArch::Mips64, ScmpArch::Mips, ScmpArch::Mips64N32],
        _ => vec![ScmpArch::native()],
    }
}

fn action(a: Action) -> ScmpAction {
    match a {
        Action::Allow => ScmpAction::Allow,
        Action::Errno(e) => ScmpAction::Errno(e as i32),
    }
}

fn cmp(c: &ArgCmp) -> ScmpArgCompare {
    match *c {
        ArgCmp::Ne(i, v) => ScmpArgCompare::new(i, ScmpCompareOp::NotEqual, v),
        ArgCmp::Eq(i, v) => ScmpArgCompare::new(i, ScmpCompareOp::Equal, v),
        ArgCmp::MaskedEq(i, m, v) => ScmpArgCompare::new(i, ScmpCompareOp::MaskedEqual(m), v),
    }
}

/// Build (not load) the filter for a capability set. Built in the sandbox init before the
/// fork, loaded by the child with [`ScmpFilterContext::load`] while it still holds
/// CAP_SYS_ADMIN (no_new_privs stays off, as Docker).
pub fn build(caps: &[String]) -> Result<ScmpFilterContext, libseccomp::error::SeccompError> {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Errno(profile::DEFAULT_ERRNO as i32))?;
    ctx.set_ctl_nnp(false)?;
    for a in arches() {
        if !ctx.is_arch_present(a)? {
            ctx.add_arch(a)?;
        }
    }
    for rule in profile::rules_for(caps, profile::docker_arch()) {
        let act = action(rule.action);
        let conds: Vec<ScmpArgCompare> = rule.args.iter().map(cmp).collect();
        for name in &rule.names {
            // Names the running libseccomp does not know on any of our arches are skipped,
            // as runc does.
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let res = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else {
                ctx.add_rule_conditional(act, sc, &conds)
            };
            // EEXIST-like conflicts (a name twice) and names absent on a sub-arch are benign.
            if let Err(e) = res {
                tracing::debug!("seccomp: rule for {name} skipped: {e}");
            }
        }
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_builds_for_default_and_extended_sets() {
        let caps = crate::sandbox::capabilities::effective_set(&[]);
        let ctx = build(&caps).expect("filter");
        let f = tempfile::tempfile().expect("tempfile");
        ctx.export_bpf(&f).expect("bpf");
        let len = f.metadata().expect("len").len();
        assert!(
            len > 100 * 8,
            "a real filter has many instructions: {len} bytes"
        );
        assert!(!ctx.get_ctl_nnp().expect("nnp attr"));
        let caps = crate::sandbox::capabilities::effective_set(&["SYS_ADMIN".into()]);
        build(&caps).expect("filter with SYS_ADMIN");
    }
}
