//! Core parsing: any bytes as a core file, read for its ELF headers, notes, segments and build
//! ids, with and without `--allow-truncated`.
#![no_main]

use coreheap_elf::core::CoreFile;
use coreheap_elf::exe::build_ids_in_image;
use coreheap_elf::input::{self, Unpack};
use coreheap_elf::memory::{Addr, Memory};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = coreheap_fuzz::write("raw.core", data);
    let unpack = Unpack {
        tmpdir: coreheap_fuzz::scratch().to_path_buf(),
        max_bytes: Some(64 << 20),
    };
    for allow_truncated in [false, true] {
        let Ok(m) = input::open(&path, &unpack) else {
            return;
        };
        let Ok(core) = CoreFile::parse(m, allow_truncated) else {
            continue;
        };
        let mem = Memory::new(&core, None, 0);
        for s in core.segments.iter().take(64) {
            let _ = mem.read(Addr(s.vaddr), 64);
            let _ = mem.u64(Addr(s.vaddr.wrapping_add(s.memsz).wrapping_sub(4)));
        }
        let _ = build_ids_in_image(&|a, n| mem.read(Addr(a), n).ok().map(|c| c.into_owned()));
        let _ = (core.mapped_bytes(), core.dumped_bytes(), core.files.len());
    }
});
