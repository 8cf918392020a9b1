//! The Python targets: a virtualenv with `FastAPI`, uvicorn and the Python library Traffik from
//! `PyPI` (created and filled by the harness when asked with `--with-python`), and the app that
//! `python/app.py` holds.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BenchError;
use crate::process::{Launch, Readiness};
use crate::target::Target;

/// What the virtualenv gets: the versions the results were measured with. `uvicorn[standard]`
/// brings uvloop and httptools, uvicorn's fastest event loop and HTTP parser.
pub const PACKAGES: [&str; 3] = [
    "traffik[redis]==1.2.2",
    "fastapi==0.165.0",
    "uvicorn[standard]==0.54.0",
];

const APP: &str = include_str!("../python/app.py");

/// A virtualenv ready to serve the Python targets.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    venv: PathBuf,
    app_dir: PathBuf,
}

fn python_error(venv: &Path, reason: impl Into<String>) -> BenchError {
    BenchError::Python {
        venv: venv.to_owned(),
        reason: reason.into(),
    }
}

fn run(venv: &Path, command: &mut Command, what: &str) -> Result<(), BenchError> {
    let output = command
        .output()
        .map_err(|error| python_error(venv, format!("{what}: {error}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(python_error(
            venv,
            format!(
                "{what} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ))
    }
}

impl PythonEnv {
    /// Creates the virtualenv at `venv` with `python3 -m venv` if there is none, installs
    /// [`PACKAGES`] into it unless they import already, and writes the app beside it.
    ///
    /// # Errors
    /// When `python3` (with its `venv` module) is missing, or pip cannot install the packages.
    pub fn prepare(venv: &Path) -> Result<PythonEnv, BenchError> {
        let python = venv.join("bin").join("python");
        if !python.exists() {
            run(
                venv,
                Command::new("python3").arg("-m").arg("venv").arg(venv),
                "python3 -m venv (on Debian: apt-get install python3-venv)",
            )?;
        }
        let installed = Command::new(&python)
            .args(["-c", "import traffik, fastapi, uvicorn, redis"])
            .output()
            .is_ok_and(|output| output.status.success());
        if !installed {
            run(
                venv,
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(PACKAGES),
                "pip install",
            )?;
        }
        let app_dir = venv.join("traffik-bench-app");
        std::fs::create_dir_all(&app_dir).map_err(|e| BenchError::io(&app_dir, e))?;
        let app = app_dir.join("app.py");
        std::fs::write(&app, APP).map_err(|e| BenchError::io(&app, e))?;
        Ok(PythonEnv {
            venv: venv.to_owned(),
            app_dir,
        })
    }

    /// How to start `target` (a Python target) on `port` with `rate`.
    pub fn launch(
        &self,
        target: Target,
        rate: &str,
        port: u16,
        redis_url: Option<&str>,
        core: Option<usize>,
    ) -> Launch {
        let mode = match target {
            Target::PythonMiddleware => "middleware",
            Target::WsPython => "websocket",
            _ => "dependency",
        };
        let mut envs = vec![
            ("BENCH_MODE".to_owned(), mode.to_owned()),
            ("BENCH_RATE".to_owned(), rate.to_owned()),
        ];
        if let (true, Some(url)) = (target.uses_redis(), redis_url) {
            envs.push(("BENCH_BACKEND".to_owned(), "redis".to_owned()));
            envs.push(("BENCH_REDIS_URL".to_owned(), url.to_owned()));
        }
        let args: Vec<OsString> = [
            "-m",
            "uvicorn",
            "app:app",
            "--host",
            "127.0.0.1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        .iter()
        .map(OsString::from)
        .chain([
            OsString::from("--port"),
            OsString::from(port.to_string()),
            OsString::from("--app-dir"),
            self.app_dir.clone().into_os_string(),
        ])
        .collect();
        Launch {
            name: target.name().to_owned(),
            program: self.venv.join("bin").join("python").into_os_string(),
            args,
            envs,
            core,
            readiness: Readiness::Http,
        }
    }
}
