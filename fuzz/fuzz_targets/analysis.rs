//! The whole analysis: a sample core patched anywhere (headers, notes, runtime metadata,
//! stacks, spans, heap pages) and perhaps cut short, opened with `--allow-truncated`, then
//! analysed and reported like `coreheap maps` and `coreheap info`.
#![no_main]

use coreheap_fuzz::{run_patched, Patch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The samples are read (and their maps found) before the first input's clock starts.
        coreheap_fuzz::samples();
    },
    |data: &[u8]| run_patched(data, Patch::Core)
);
