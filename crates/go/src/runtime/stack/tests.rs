//! Unwinding checked against the runtime's own account: a sample program crashed with
//! GOTRACEBACK=crash, which prints every goroutine's frames with their sp, fp and pc
//! (traceback.txt beside the core); `stack_roots` must find the same frames in the core.

use std::collections::BTreeMap;

use crate::runtime::Runtime;
use crate::testing;

/// A frame as the traceback prints it: function, sp, fp, pc.
type Frame = (String, u64, u64, u64);

/// A goroutine of the traceback: whether it was running, and its physical frames.
type Printed = (bool, Vec<Frame>);

/// The goroutines of the first (crashing) section of traceback.txt, by id, with the frames
/// that have a stack frame of their own: inlined calls (`f(...)` without sp) are left out.
/// The sections of the other threads that follow (`goroutine 0`, their signal stacks) are
/// no goroutines' stacks and end the reading.
fn printed(sample: &str) -> BTreeMap<u64, Printed> {
    let path = testing::sample_dir(sample).join("traceback.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex = |line: &str, key: &str| -> Option<u64> {
        let v = line.split(key).nth(1)?.split_whitespace().next()?;
        u64::from_str_radix(v.strip_prefix("0x")?, 16).ok()
    };
    let mut out = BTreeMap::new();
    let mut current: Option<u64> = None;
    let mut func = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("goroutine ") {
            let id: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            if id == 0 {
                break;
            }
            out.insert(id, (rest.contains("[running]"), Vec::new()));
            current = Some(id);
        } else if !line.starts_with('\t') {
            // `pkg.(*T).f(args)`: the name ends where the argument list begins.
            func = line.rfind('(').map_or(line, |i| &line[..i]);
        } else if let (Some(id), Some(sp), Some(fp), Some(pc)) = (
            current,
            hex(line, " sp="),
            hex(line, " fp="),
            hex(line, " pc="),
        ) {
            let frames = &mut out.get_mut(&id).unwrap().1;
            frames.push((func.to_string(), sp, fp, pc));
        }
    }
    out
}

/// Unwinds every goroutine of the sample and compares it with the printed traceback.
fn frames_match_the_traceback(sample: &str, goroutines: usize) {
    let want = printed(sample);
    assert_eq!(want.len(), goroutines, "{sample}: goroutines printed");
    assert_eq!(
        want.values().filter(|(running, _)| *running).count(),
        1,
        "{sample}: one goroutine crashed"
    );
    let p = testing::open(sample);
    let roots = Runtime::new(&p).stack_roots().unwrap();
    assert_eq!(roots.skipped_goroutines, 0, "{sample}");
    assert_eq!(roots.skipped_frames, 0, "{sample}");
    let mut ours: BTreeMap<u64, Vec<Frame>> = BTreeMap::new();
    for f in &roots.frames {
        let frame = (f.func.clone(), f.sp, f.fp, f.pc);
        ours.entry(f.goid).or_default().push(frame);
    }
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{sample}: the goroutines unwound are the ones the runtime printed"
    );
    for (id, (running, printed)) in &want {
        let ours = &ours[id];
        assert!(!printed.is_empty(), "{sample}: goroutine {id}");
        if *running {
            // The printout starts where the goroutine crashed; frames above it that the core
            // holds (a signal handler's, unwound through the signal frame) come first in ours.
            assert!(
                ours.ends_with(printed),
                "{sample}: running goroutine {id}: ours {ours:#x?}, printed {printed:#x?}"
            );
        } else {
            assert_eq!(ours, printed, "{sample}: goroutine {id}");
        }
        assert_eq!(
            ours.last().map(|f| f.0.as_str()),
            Some("runtime.goexit"),
            "{sample}: goroutine {id} ends at goexit"
        );
    }
}

#[test]
fn unwinds_like_the_runtime_go1_26_amd64() {
    frames_match_the_traceback("go1.26.6/ledger", 10);
}

#[test]
fn unwinds_like_the_runtime_go1_23_arm64() {
    frames_match_the_traceback("go1.23.9-arm64/ledger", 10);
}
