//! Executable parsing: a sample executable patched in a few places (ELF headers, build info,
//! symbols, pclntab, DWARF and its compressed sections), analysed with its unharmed core and
//! `--force`, so that what the executable says is read everywhere the analysis reads it.
#![no_main]

use coreheap_fuzz::{run_patched, Patch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The samples are read (and their maps found) before the first input's clock starts.
        coreheap_fuzz::samples();
    },
    |data: &[u8]| run_patched(data, Patch::Exe)
);
