//! [`BenchError`]: everything that can stop a benchmark run, each with what to do about it.

use std::path::PathBuf;

/// Why a benchmark run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The chosen options make no sense together.
    #[error("{0}")]
    Usage(String),
    /// A program the run needs is missing and could not be installed.
    #[error("`{program}` is needed and could not be installed: {reason}")]
    Missing {
        /// The program.
        program: String,
        /// What went wrong installing it.
        reason: String,
    },
    /// Setting up the Python virtualenv failed.
    #[error("setting up the Python virtualenv in {venv}: {reason}")]
    Python {
        /// The virtualenv's directory.
        venv: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A server process did not start or did not become ready.
    #[error("the {name} server did not start: {reason}")]
    ServerStart {
        /// The target or helper (`redis-server`).
        name: String,
        /// What went wrong, with the end of its log when there is one.
        reason: String,
    },
    /// The load client could not talk to a server at all.
    #[error("load client: {0}")]
    Load(String),
    /// A Rust target could not be built (a bad rate, a backend that would not connect).
    #[error("building the {target} target: {reason}")]
    Target {
        /// The target.
        target: String,
        /// What failed.
        reason: String,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Rendering the chart.
    #[error("drawing the chart: {0}")]
    Chart(String),
}

impl BenchError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}
