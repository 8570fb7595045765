//! Why a region or a slot in it could not be opened.

use std::fmt;
use std::io;

use crate::error::ConfigError;

/// Why a region or a slot in it could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegionError {
    /// A system call failed: `op` on `path`.
    Io {
        /// What was being done (`open`, `mmap`, ...).
        op: &'static str,
        /// The region's file.
        path: String,
        /// The system's error.
        source: io::Error,
    },
    /// The file is not a failwell region (no magic in its header).
    NotARegion {
        /// The file.
        path: String,
    },
    /// The region was written by a build with another layout version.
    LayoutVersion {
        /// The file.
        path: String,
        /// Its layout version.
        found: u64,
        /// This build's, [`LAYOUT_VERSION`](super::LAYOUT_VERSION).
        expected: u64,
    },
    /// No room for a new slot: every entry is taken, or the blocks fill
    /// the file.
    Full {
        /// Which: entries or bytes, with the figures.
        problem: String,
    },
    /// A slot name, region name or size the caller passed is not valid.
    Argument {
        /// The argument (`name`, `size`).
        argument: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The name is a slot of another kind of primitive.
    KindMismatch {
        /// The slot.
        name: String,
        /// What it holds.
        stored: &'static str,
        /// What was asked for.
        asked: &'static str,
    },
    /// The name exists with another configuration.
    ConfigMismatch {
        /// The slot.
        name: String,
        /// The stored configuration, described.
        stored: String,
        /// The configuration asked for, described.
        asked: String,
    },
    /// No slot of that name (attaching, which creates nothing).
    NotFound {
        /// The slot.
        name: String,
    },
    /// The configuration asked for is not valid.
    Config(ConfigError),
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::Io { op, path, source } => write!(f, "region {path}: {op}: {source}"),
            RegionError::NotARegion { path } => {
                write!(f, "{path} is not a failwell region (no region header)")
            }
            RegionError::LayoutVersion {
                path,
                found,
                expected,
            } => write!(
                f,
                "region {path} has layout version {found}, this build reads {expected}; \
                 stop the processes using it and remove it, or use a matching build"
            ),
            RegionError::Full { problem } => write!(f, "region full: {problem}"),
            RegionError::Argument { argument, problem } => write!(f, "{argument}: {problem}"),
            RegionError::KindMismatch {
                name,
                stored,
                asked,
            } => write!(f, "slot {name:?} holds a {stored}, not a {asked}"),
            RegionError::ConfigMismatch {
                name,
                stored,
                asked,
            } => write!(
                f,
                "slot {name:?} exists with configuration {stored}, not {asked}; \
                 attach to adopt the stored one"
            ),
            RegionError::NotFound { name } => write!(f, "no slot {name:?} in the region"),
            RegionError::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RegionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegionError::Io { source, .. } => Some(source),
            RegionError::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for RegionError {
    fn from(e: ConfigError) -> Self {
        RegionError::Config(e)
    }
}
