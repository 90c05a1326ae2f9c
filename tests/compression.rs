//! Cores arrive compressed in every format systemd-coredump and people use; each must read the same.

mod common;

use std::io::Write;

use coreheap::report::info::InfoReport;
use coreheap_elf::input::Compression;
use coreheap_go::process::{OpenOptions, Process};

use common::{sample, unzstd};

fn recompress(raw: &[u8], format: Compression) -> Vec<u8> {
    match format {
        Compression::Zstd => zstd::encode_all(raw, 3).unwrap(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Compression::Xz => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
    }
}

#[test]
fn every_compression_and_none_give_the_same_report() {
    let s = sample("go1.26.6/tiny");
    let raw = unzstd(&s.core);
    let d = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        exe: Some(s.exe()),
        tmpdir: Some(d.path().to_path_buf()),
        ..Default::default()
    };
    let plain = d.path().join("core");
    std::fs::write(&plain, &raw).unwrap();
    let base = InfoReport::gather(&Process::open(&plain, &opts).unwrap(), None).unwrap();
    assert_eq!(base.core.compression, None);
    for format in [
        Compression::Gzip,
        Compression::Xz,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let p = d.path().join(format!("core.{}", format.name()));
        std::fs::write(&p, recompress(&raw, format)).unwrap();
        let proc = Process::open(&p, &opts).unwrap();
        let r = InfoReport::gather(&proc, None).unwrap();
        assert_eq!(r.core.compression, Some(format.name()));
        assert_eq!(r.core.size_bytes, raw.len() as u64);
        assert_eq!(r.goroutines, base.goroutines);
        assert_eq!(r.memory.heap_inuse_bytes, base.memory.heap_inuse_bytes);
    }
    // Decompressed copies are unnamed temporary files: nothing is left in --tmpdir but our inputs.
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 5);
}
