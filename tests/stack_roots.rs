//! Goroutine stack roots on the committed sample cores: every goroutine unwinds to its start
//! function, the stack maps only name words that point at live objects, and the map that only
//! a goroutine's stack holds is found from that goroutine's frame.

mod common;

use std::time::Instant;

use coreheap_go::heap::{Heap, HeapIndex};
use coreheap_go::process::{OpenOptions, Process};
use coreheap_go::runtime::{decode_pcvalue, Runtime, StackRoots};

use common::{samples, Sample};

/// Opens a sample and computes its stack roots.
fn roots(s: &Sample) -> (Process, StackRoots) {
    let (p, r, _) = timed_roots(s);
    (p, r)
}

/// Opens a sample and computes its stack roots, timing only the stack walk.
fn timed_roots(s: &Sample) -> (Process, StackRoots, std::time::Duration) {
    let p = Process::open(&s.core, &OpenOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
    let t0 = Instant::now();
    let r = Runtime::new(&p)
        .stack_roots()
        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
    let took = t0.elapsed();
    (p, r, took)
}

/// The function name as the pclntab spells it (ELF symbols of assembly carry `.abi0`).
fn plain(name: &str) -> &str {
    name.strip_suffix(".abi0").unwrap_or(name)
}

#[test]
fn every_goroutine_unwinds_to_its_start_function() {
    let all = samples();
    assert!(!all.is_empty());
    for s in &all {
        let (p, r) = roots(s);
        let rt = Runtime::new(&p);
        let gs = rt.goroutines().unwrap();
        let mut checked = 0;
        for g in gs.iter().filter(|g| g.status.is_live()) {
            let frames: Vec<&str> = r
                .frames
                .iter()
                .filter(|f| f.goid == g.id)
                .map(|f| f.func.as_str())
                .collect();
            let start = plain(&g.start_func);
            assert!(
                frames.contains(&start),
                "{}: goroutine {} ({:?}) started at {start}: frames {frames:?}",
                s.name,
                g.id,
                g.status
            );
            checked += 1;
        }
        assert!(checked > 0, "{}", s.name);
        // The crashing goroutine included: its registers come from the signal frame.
        assert_eq!(r.skipped_goroutines, 0, "{}", s.name);
        assert_eq!(r.skipped_frames, 0, "{}", s.name);
        // Slots lie above their frame's SP and below the top of their goroutine's stack.
        for slot in &r.slots {
            let f = &r.frames[slot.frame as usize];
            let top = r
                .frames
                .iter()
                .filter(|g| g.goid == f.goid)
                .map(|g| g.fp)
                .max()
                .unwrap_or(0);
            assert!(
                slot.addr.0 >= f.sp && slot.addr.0 < top,
                "{}: slot {} of {} outside [{:#x}, {top:#x})",
                s.name,
                slot.addr,
                f.func,
                f.sp,
            );
        }
    }
}

/// One goroutine of a printed traceback: id, whether it was running, and (sp, fp, pc) per frame.
type Printed = (u64, bool, Vec<(u64, u64, u64)>);

/// The frames the runtime printed when the program crashed (GOTRACEBACK=crash gives each
/// frame's sp, fp and pc), per goroutine id; inlined frames have no sp and are left out.
fn printed_frames(s: &Sample) -> Vec<Printed> {
    let text = std::fs::read_to_string(s.dir.join("traceback.txt")).unwrap_or_default();
    let hex = |line: &str, key: &str| -> Option<u64> {
        let v = line.split(key).nth(1)?.split_whitespace().next()?;
        u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()
    };
    let mut out: Vec<Printed> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("goroutine ") {
            if let Some(id) = rest.split_whitespace().next().and_then(|i| i.parse().ok()) {
                out.push((id, rest.contains("[running"), Vec::new()));
            }
        } else if let (Some(fp), Some(sp), Some(pc), Some(last)) = (
            hex(line, " fp="),
            hex(line, " sp="),
            hex(line, " pc="),
            out.last_mut(),
        ) {
            last.2.push((sp, fp, pc));
        }
    }
    out
}

/// Every goroutine's frames are the ones the runtime itself printed at the crash. The running
/// (crashing) goroutine's printout starts at the panic; the frames above it (raise,
/// fatalpanic), recovered from the signal frame, come first in ours.
#[test]
fn frames_match_the_runtime_traceback() {
    let mut compared = 0;
    for s in samples() {
        let (_, r) = roots(&s);
        for (goid, running, printed) in printed_frames(&s) {
            // "goroutine 0" is the system stack of the thread that took the signal: not a
            // goroutine in allgs, and not scanned by the GC.
            if printed.is_empty() || goid == 0 {
                continue;
            }
            let ours: Vec<(u64, u64, u64)> = r
                .frames
                .iter()
                .filter(|f| f.goid == goid)
                .map(|f| (f.sp, f.fp, f.pc))
                .collect();
            assert!(
                ours.ends_with(&printed),
                "{}: goroutine {goid}: ours {ours:x?}, printed {printed:x?}",
                s.name
            );
            if !running {
                assert_eq!(ours, printed, "{}: goroutine {goid}", s.name);
            }
            compared += 1;
        }
    }
    assert!(compared > 0);
}

/// After the program's final GC, every precise stack pointer into an in-use span must land on
/// a live slot: a wrong stack map (or a wrong unwind) shows up as pointers to free slots.
#[test]
fn precise_stack_slots_point_only_to_live_objects() {
    for s in samples() {
        let (p, r, took) = timed_roots(&s);
        let rt = Runtime::new(&p);
        let heap = Heap::read(&rt).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let index = HeapIndex::new(&heap, coreheap_go::heap::PAGE_SIZE);
        let (mut to_live, mut to_free, mut conservative) = (0u64, 0u64, 0u64);
        for slot in &r.slots {
            if slot.is_conservative() {
                conservative += 1;
                continue;
            }
            let v = p
                .mem
                .ptr(slot.addr)
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            if let Some(hs) = index.find(&heap, v) {
                if heap.spans[hs.span as usize].is_live(hs.index) {
                    to_live += 1;
                } else {
                    to_free += 1;
                    let f = &r.frames[slot.frame as usize];
                    eprintln!(
                        "{}: slot {} ({:?}) in goroutine {} {} holds {v}, a free slot",
                        s.name, slot.addr, slot.name, f.goid, f.func
                    );
                }
            }
        }
        let goroutines = {
            let mut ids: Vec<u64> = r.frames.iter().map(|f| f.goid).collect();
            ids.dedup();
            ids.len()
        };
        eprintln!(
            "{:28} goroutines {:3} frames {:4} slots {:4} (conservative {}) to live {:3} \
             skipped {}/{} in {:?}",
            s.name,
            goroutines,
            r.frames.len(),
            r.slots.len(),
            conservative,
            to_live,
            r.skipped_goroutines,
            r.skipped_frames,
            took
        );
        assert_eq!(to_free, 0, "{}: stack pointers to free slots", s.name);
        assert!(to_live > 0, "{}: no stack pointer reaches the heap", s.name);
    }
}

#[test]
fn the_map_held_only_by_a_goroutine_is_found_in_its_frame() {
    let mut checked = 0;
    for s in samples().into_iter().filter(|s| s.program() == "zoo") {
        let (p, r) = roots(&s);
        let maps = s.truth["maps"].as_array().cloned().unwrap_or_default();
        for m in maps {
            let name = m["name"].as_str().unwrap_or("");
            let Some(rest) = name.strip_prefix("goroutine ") else {
                continue;
            };
            let func = rest.split(':').next().unwrap_or("").trim();
            let addr = m["addr"]
                .as_str()
                .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
                .unwrap_or_else(|| panic!("{}: {name} has no addr", s.name));
            let holders: Vec<_> = r
                .slots
                .iter()
                .filter(|slot| r.frames[slot.frame as usize].func == func)
                .filter(|slot| p.mem.ptr(slot.addr).map(|v| v.0) == Ok(addr))
                .collect();
            assert!(
                !holders.is_empty(),
                "{}: no slot of a {func} frame holds the map at {addr:#x}",
                s.name
            );
            // DWARF names the local when the program keeps it in its stack slot.
            assert!(
                holders.iter().any(|h| h.name.as_deref() == Some("m")),
                "{}: slots holding {name}: {holders:?}",
                s.name
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no zoo sample with a goroutine-held map");
}

/// Encodes a pc-value table the way the Go linker does.
fn encode(steps: &[(i32, u64)], quantum: u64) -> Vec<u8> {
    fn uvarint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    let mut prev = -1i32;
    for &(val, pcdelta) in steps {
        let d = val - prev;
        let z = ((d << 1) ^ (d >> 31)) as u32;
        uvarint(u64::from(z), &mut out);
        uvarint(pcdelta / quantum, &mut out);
        prev = val;
    }
    out.push(0);
    out
}

#[test]
fn pcvalue_decodes_a_hand_made_table() {
    // amd64-like pcsp: 0 for 4 bytes, 24 for 200 bytes (multi-byte pc delta), 0 for 1 byte.
    let entry = 0x401000;
    let t = encode(&[(0, 4), (24, 200), (0, 1)], 1);
    assert_eq!(
        t[..2],
        [0x02, 0x04],
        "first step: value -1 → 0 is +1, zigzag 2"
    );
    assert_eq!(decode_pcvalue(&t, entry, entry, 1), Some(0));
    assert_eq!(decode_pcvalue(&t, entry, entry + 3, 1), Some(0));
    assert_eq!(decode_pcvalue(&t, entry, entry + 4, 1), Some(24));
    assert_eq!(decode_pcvalue(&t, entry, entry + 203, 1), Some(24));
    assert_eq!(decode_pcvalue(&t, entry, entry + 204, 1), Some(0));
    assert_eq!(decode_pcvalue(&t, entry, entry + 205, 1), None);

    // arm64: pc deltas count 4-byte instructions; negative values (PCDATA -1) and a value
    // that stays the same (-1 as the first value is a zero delta, allowed only first).
    let t = encode(&[(-1, 8), (3, 16), (-1, 4)], 4);
    assert_eq!(t[0], 0, "first value -1 is a zero delta");
    assert_eq!(decode_pcvalue(&t, entry, entry + 4, 4), Some(-1));
    assert_eq!(decode_pcvalue(&t, entry, entry + 8, 4), Some(3));
    assert_eq!(decode_pcvalue(&t, entry, entry + 23, 4), Some(3));
    assert_eq!(decode_pcvalue(&t, entry, entry + 24, 4), Some(-1));
    assert_eq!(decode_pcvalue(&t, entry, entry + 28, 4), None);

    // Damaged tables end the decoding instead of panicking.
    assert_eq!(decode_pcvalue(&[], entry, entry, 1), None);
    assert_eq!(decode_pcvalue(&[0x80], entry, entry, 1), None);
    assert_eq!(decode_pcvalue(&[0x02, 0xff], entry, entry + 1, 1), None);
}

/// Prints the frames and slots of the sample named by $SAMPLE, or of the core at $CORE, with
/// what each slot's value points at in the heap, for inspection:
/// `SAMPLE=go1.26.6/zoo cargo test --test stack_roots dump -- --ignored --nocapture`.
#[test]
#[ignore]
fn dump() {
    let cores: Vec<std::path::PathBuf> = match std::env::var("CORE") {
        Ok(c) => vec![c.into()],
        Err(_) => {
            let want = std::env::var("SAMPLE").unwrap_or_default();
            samples()
                .into_iter()
                .filter(|s| s.name == want)
                .map(|s| s.core)
                .collect()
        }
    };
    for core in cores {
        let p = Process::open(&core, &OpenOptions::default()).unwrap();
        let rt = Runtime::new(&p);
        let r = rt.stack_roots().unwrap();
        let heap = Heap::read(&rt).unwrap();
        let index = HeapIndex::new(&heap, coreheap_go::heap::PAGE_SIZE);
        for (i, f) in r.frames.iter().enumerate() {
            eprintln!(
                "#{i} g{} {} pc={:#x} sp={:#x} fp={:#x}",
                f.goid, f.func, f.pc, f.sp, f.fp
            );
            for sl in r.slots.iter().filter(|sl| sl.frame as usize == i) {
                let v = p.mem.ptr(sl.addr).unwrap_or_default();
                let what = match index.find(&heap, v) {
                    Some(h) if heap.spans[h.span as usize].is_live(h.index) => "live",
                    Some(_) => "FREE",
                    None => "",
                };
                eprintln!("    {} = {v} {:?} {what}", sl.addr, sl.name);
            }
        }
        eprintln!("skipped {} {}", r.skipped_goroutines, r.skipped_frames);
    }
}
