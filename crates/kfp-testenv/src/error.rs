//! The one error type of this crate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting or using a test control plane.
///
/// `Debug` prints the same text as `Display`, so that a test returning `Result<(), Error>` or calling
/// `.expect(..)` shows a readable message (including process log tails where there are some).
#[derive(thiserror::Error)]
pub enum Error {
    /// `kube-apiserver`/`etcd` (or the Argo CRDs) are not where this crate looks for them.
    #[error("{0}")]
    AssetsMissing(String),

    /// The control plane did not come up; `logs` holds the tails of the process logs.
    #[error("the test control plane did not start: {message}\n{logs}")]
    Start {
        /// What failed.
        message: String,
        /// The last lines of the etcd and kube-apiserver logs.
        logs: String,
    },

    /// The shared control plane of this test binary failed to start in an earlier test.
    #[error("the shared test control plane of this test binary failed to start: {0}")]
    Shared(String),

    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file or program.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Generating test certificates or keys failed.
    #[error("could not generate test certificates: {0}")]
    Certificate(#[from] rcgen::Error),

    /// A call to the API server failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done, naming the object.
        context: String,
        /// The error from kube; `kube::Error::Api` carries the HTTP status code.
        #[source]
        source: kube::Error,
    },

    /// A YAML file could not be read as Kubernetes objects.
    #[error("{}: {message}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// [`wait_for`](crate::wait_for) gave up.
    #[error("timed out after {timeout:?} waiting for {what}{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long it waited.
        timeout: Duration,
        /// The last error the condition returned, if any.
        last_error: Option<String>,
    },

    /// An argument or object is not usable as given.
    #[error("{0}")]
    Invalid(String),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status code when this is an error answer of the API server (e.g. 403, 404, 409, 422).
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Kube {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
