//! Where the per-object tables go: memory, or unnamed files in a scratch directory when they
//! would not fit in the memory available. Decided once, when the heap's object count is known
//! and before any table is allocated.

use std::path::{Path, PathBuf};

use coreheap::analysis::{mem_available, Memory, TABLE_BYTES_PER_OBJECT};
use coreheap::report::human_bytes;

use crate::alloc;

/// The table placement chosen on the command line, as the analysis's [`Memory`].
pub struct TablePlace {
    /// The directory scratch files go to if memory turns out short; `None` when they are
    /// already in use (`--scratch-dir`).
    fallback: Option<PathBuf>,
}

impl TablePlace {
    /// Tables in scratch files in `dir` from the start.
    pub fn scratch(dir: &Path) -> Result<TablePlace, alloc::ScratchError> {
        alloc::use_scratch(dir)?;
        Ok(TablePlace { fallback: None })
    }

    /// Tables in memory, or in scratch files in `dir` if they would not fit.
    pub fn memory_or(dir: PathBuf) -> TablePlace {
        TablePlace {
            fallback: Some(dir),
        }
    }
}

impl Memory for TablePlace {
    fn before_tables(&self, objects: u64) {
        let (Some(dir), Some(avail)) = (&self.fallback, mem_available()) else {
            return;
        };
        let need = objects.saturating_mul(TABLE_BYTES_PER_OBJECT);
        if need <= avail {
            return;
        }
        let (need, avail) = (human_bytes(need), human_bytes(avail));
        match alloc::use_scratch(dir) {
            Ok(()) => eprintln!(
                "coreheap: note: the tables for {objects} objects need about {need} and {avail} is available; large tables go to scratch files in {}",
                dir.display()
            ),
            Err(e) => eprintln!(
                "coreheap: warning: the tables for {objects} objects need about {need} and {avail} is available, but {e}"
            ),
        }
    }

    fn phase_freed(&self) {
        alloc::trim_system_heap();
    }
}
