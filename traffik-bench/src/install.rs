//! Installs a program the run needs from Debian's packages when it is missing.

use std::process::Command;

use crate::error::BenchError;

/// Whether `program` is on the `PATH`.
#[must_use]
pub fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Makes sure `program` is there, installing Debian's `package` with `apt-get` (as root, or
/// through `sudo`) when it is not.
///
/// # Errors
/// When it is missing and could not be installed.
pub fn ensure(program: &str, package: &str) -> Result<(), BenchError> {
    if has(program) {
        return Ok(());
    }
    let missing = |reason: String| BenchError::Missing {
        program: program.to_owned(),
        reason,
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    eprintln!("installing {package} (for {program})");
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", package][..],
    ] {
        let output = apt(args).map_err(|error| missing(format!("apt-get: {error}")))?;
        if !output.status.success() {
            return Err(missing(format!(
                "apt-get {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }
    if has(program) {
        Ok(())
    } else {
        Err(missing(format!(
            "{package} installed, but {program} is not on the PATH"
        )))
    }
}
