//! Decompression: any bytes as a (possibly zstd, xz, gzip or lz4 compressed) input, opened
//! with a small output bound so that a stream that inflates without end is stopped.
#![no_main]

use coreheap_elf::input::{self, Unpack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = coreheap_fuzz::write("stream", data);
    for max_bytes in [None, Some(1 << 20)] {
        let unpack = Unpack {
            tmpdir: coreheap_fuzz::scratch().to_path_buf(),
            max_bytes,
        };
        if let Ok(m) = input::open(&path, &unpack) {
            assert!(max_bytes.map_or(true, |b| m.bytes().len() as u64 <= b));
            let _ = coreheap_elf::core::CoreFile::parse(m, true);
        }
    }
});
