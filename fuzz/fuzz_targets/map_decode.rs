//! Map decoding: a sample core patched only where its maps are (headers, bucket and group
//! arrays, directories, overflow buckets), then analysed and reported like `coreheap maps`.
#![no_main]

use coreheap_fuzz::{run_patched, Patch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The samples are read (and their maps found) before the first input's clock starts.
        for i in 0..coreheap_fuzz::SAMPLES.len() {
            coreheap_fuzz::map_ranges(i);
        }
    },
    |data: &[u8]| run_patched(data, Patch::CoreMaps)
);
