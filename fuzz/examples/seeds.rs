//! Writes the seed corpus of every fuzz target under the directory given (`make fuzz` runs
//! it into fuzz/seeds): heads of the sample cores, their compressed forms, and one input per
//! sample for the patch targets.

use std::io::Write;
use std::path::Path;

use coreheap_fuzz::{samples, SAMPLES};

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("seed directory");
    std::fs::write(d.join(name), bytes).expect("seed write");
}

fn main() {
    let dir = std::env::args_os().nth(1).expect("usage: seeds DIR");
    let dir = Path::new(&dir);
    for (i, s) in samples().iter().enumerate() {
        let (ver, name) = SAMPLES[i];
        let tag = format!("{ver}-{name}");
        // Patch targets: the unharmed sample, and the sample cut short (analysis only).
        for target in ["exe_parse", "map_decode", "analysis"] {
            put(dir, target, &tag, &[i as u8]);
        }
        put(
            dir,
            "analysis",
            &format!("{tag}-cut"),
            &[0x80 | i as u8; 200],
        );
        // Core parsing: the head of each core (ELF header, program headers, notes).
        for kib in [4, 64] {
            let head = &s.core[..s.core.len().min(kib << 10)];
            put(dir, "core_parse", &format!("{tag}-{kib}k"), head);
        }
        // Decompression: the head of the core in each compression coreheap reads.
        let head = &s.core[..s.core.len().min(64 << 10)];
        put(
            dir,
            "decompress",
            &format!("{tag}.zst"),
            &zstd::encode_all(head, 3).expect("zstd"),
        );
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(head).expect("xz");
        put(
            dir,
            "decompress",
            &format!("{tag}.xz"),
            &xz.finish().expect("xz"),
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(head).expect("gzip");
        put(
            dir,
            "decompress",
            &format!("{tag}.gz"),
            &gz.finish().expect("gzip"),
        );
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(head).expect("lz4");
        put(
            dir,
            "decompress",
            &format!("{tag}.lz4"),
            &lz.finish().expect("lz4"),
        );
    }
}
