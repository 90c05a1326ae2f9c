//! Test helpers: the committed sample cores (`samples/cores/<go version>/<program>/`) and the
//! ground truth their programs wrote about themselves.

use std::path::PathBuf;

use crate::process::{OpenOptions, Process};

/// The directory of a committed sample, `go1.26.6/ledger`.
pub(crate) fn sample_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/cores")).join(name)
}

/// Opens a committed sample's core, with its executable found beside it.
pub(crate) fn open(name: &str) -> Process {
    let core = sample_dir(name).join("core.zst");
    Process::open(&core, &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}
