//! Which words of a frame hold pointers, as `scanframeworker` and `getStackMap` find them: the
//! locals and arguments bitmaps of the pclntab's FUNCDATA stack maps at the frame's stack map
//! index, the stack objects those pointers reach, the defer and panic records' pointers into
//! the stack, and conservative scans of frames interrupted asynchronously.

use super::super::pclntab::{
    Func, ARGS_SIZE_UNKNOWN, FUNCDATA_ARGS_POINTER_MAPS, FUNCDATA_LOCALS_POINTER_MAPS,
    FUNCDATA_STACK_OBJECTS, PCDATA_STACK_MAP_INDEX,
};
use super::super::Goroutine;
use super::{names, FoundSlot, Frame, Layout, ScanState, StackMem, StackObject, Walker, PTR};
use crate::memory::Addr;
use crate::reader::Cursor;

impl Walker<'_, '_> {
    /// Adds a pointer word found precisely or conservatively.
    fn add_slot(
        &self,
        stack: &StackMem,
        st: &mut ScanState,
        addr: u64,
        frame: u32,
        conservative: bool,
    ) {
        let v = stack.word(addr);
        if conservative && v.unwrap_or(0) == 0 {
            return;
        }
        st.slots.push(FoundSlot {
            addr,
            frame,
            conservative,
        });
        if let Some(v) = v.filter(|&v| stack.contains(v)) {
            if conservative {
                st.cons.push(v);
            } else {
                st.precise.push(v);
            }
        }
    }

    /// `scanframeworker`: the frame's pointer words and its stack objects.
    pub(super) fn scan_frame(
        &mut self,
        fr: &Frame,
        idx: u32,
        stack: &StackMem,
        st: &mut ScanState,
    ) {
        let injected = fr.name == names::ASYNC_PREEMPT || fr.name == names::DEBUG_CALL;
        if st.conservative || injected {
            self.scan_conservatively(fr, idx, stack, st);
            // The frame an injected call interrupted is scanned conservatively too.
            st.conservative = injected;
            return;
        }

        // `getStackMap`.
        let mut targetpc = fr.continpc;
        if targetpc == 0 {
            // A dead frame (stopped by a trap with no deferreturn): nothing is live.
            return;
        }
        let f = &fr.f;
        let mut pcdata = -1;
        if targetpc != f.entry {
            targetpc -= 1;
            pcdata = self.tab.pcdata(f, PCDATA_STACK_MAP_INDEX, targetpc);
        }
        if pcdata == -1 {
            pcdata = 0;
        }

        let mut ok = true;
        let minsize = if self.arm64 { 16 } else { 0 };
        if fr.varp.saturating_sub(fr.sp) > minsize {
            // The locals bitmap ends at varp; it must not reach below the stack.
            let base =
                |bytes: u64| (bytes <= fr.varp.saturating_sub(stack.lo)).then(|| fr.varp - bytes);
            ok &= self.scan_bitmap(
                fr,
                FUNCDATA_LOCALS_POINTER_MAPS,
                pcdata,
                base,
                idx,
                stack,
                st,
            );
        }
        if f.args == ARGS_SIZE_UNKNOWN {
            // reflect.makeFuncStub / methodValueCall: the argument map lives in reflect's data.
            ok = false;
        } else if f.args >= PTR as i32 {
            // The arguments bitmap starts at argp; it must not reach above the stack.
            let base = |bytes: u64| (bytes <= stack.hi.saturating_sub(fr.argp)).then_some(fr.argp);
            ok &= self.scan_bitmap(fr, FUNCDATA_ARGS_POINTER_MAPS, pcdata, base, idx, stack, st);
        }
        if fr.varp != 0 && f.args != ARGS_SIZE_UNKNOWN {
            ok &= self.stack_objects(fr, idx, stack, st);
        }
        if !ok {
            self.out.skipped_frames += 1;
        }
    }

    /// Adds every non-zero word of a frame the runtime scans conservatively, and of its
    /// arguments.
    fn scan_conservatively(&self, fr: &Frame, idx: u32, stack: &StackMem, st: &mut ScanState) {
        if fr.varp != 0 && fr.varp > fr.sp {
            let mut size = fr.varp - fr.sp;
            let injected = matches!(
                fr.name.as_str(),
                names::ASYNC_PREEMPT | names::DEBUG_CALL | names::SIGPANIC
            );
            if self.arm64 && injected {
                // The small frame injected by pushCall.
                size += 16;
            }
            let end = fr.sp.saturating_add(size).min(stack.hi);
            for a in (fr.sp..end).step_by(PTR as usize) {
                self.add_slot(stack, st, a, idx, true);
            }
        }
        if fr.f.args != ARGS_SIZE_UNKNOWN && fr.f.args > 0 {
            let end = fr.argp.saturating_add(fr.f.args as u64).min(stack.hi);
            for a in (fr.argp..end).step_by(PTR as usize) {
                self.add_slot(stack, st, a, idx, true);
            }
        }
    }

    /// Adds the words the FUNCDATA bitmap `which` marks at `pcdata`, the first at the address
    /// `base` gives for the bitmap's size in bytes; false when the map is unusable or `base`
    /// finds it off the stack.
    #[allow(clippy::too_many_arguments)]
    fn scan_bitmap(
        &self,
        fr: &Frame,
        which: u8,
        pcdata: i32,
        base: impl Fn(u64) -> Option<u64>,
        idx: u32,
        stack: &StackMem,
        st: &mut ScanState,
    ) -> bool {
        let (nbit, bits) = match self.stackmap(&fr.f, which, pcdata) {
            StackMap::Bits(nbit, bits) => (u64::from(nbit), bits),
            StackMap::Empty => return true,
            StackMap::Unusable => return false,
        };
        let Some(base) = base(nbit * PTR) else {
            return false;
        };
        for i in 0..nbit {
            if bit(&bits, i) {
                self.add_slot(stack, st, base + i * PTR, idx, false);
            }
        }
        true
    }

    /// Registers the frame's stack objects (`stackObjectRecord`s) that are allocated in it;
    /// false when the records cannot be read.
    fn stack_objects(&self, fr: &Frame, idx: u32, stack: &StackMem, st: &mut ScanState) -> bool {
        let Some(p) = self.tab.funcdata(&fr.f, FUNCDATA_STACK_OBJECTS) else {
            return true;
        };
        let mem = self.rt.mem();
        let n = mem.u64(p).unwrap_or(0).min(1 << 16);
        for i in 0..n {
            // stackObjectRecord: off, size, ptrBytes (negative: GC program), gcdataoff.
            let Ok(rec) = mem.read(p.offset(PTR + 16 * i), 16) else {
                return false;
            };
            let mut c = Cursor::new(&rec);
            let (Some(off), Some(size), Some(ptr_bytes), Some(gcdataoff)) =
                (c.u32(), c.u32(), c.u32(), c.u32())
            else {
                return false;
            };
            let (off, size, ptr_bytes) = (off as i32, size as i32, ptr_bytes as i32);
            let base = if off >= 0 { fr.argp } else { fr.varp };
            let addr = base.wrapping_add_signed(i64::from(off));
            if addr < fr.sp || size <= 0 || addr >= stack.hi {
                // Not allocated in the frame yet.
                continue;
            }
            st.objects.push(StackObject {
                addr,
                size: size as u64,
                ptr_bytes: i64::from(ptr_bytes),
                gcdata: self.tab.rodata.wrapping_add(u64::from(gcdataoff)),
                frame: idx,
                scanned: false,
            });
        }
        true
    }

    /// The bitmap at `index` of a FUNCDATA stack map (`stackmapdata`).
    fn stackmap(&self, f: &Func, which: u8, index: i32) -> StackMap {
        let Some(p) = self.tab.funcdata(f, which) else {
            return StackMap::Unusable;
        };
        let mem = self.rt.mem();
        let (Ok(n), Ok(nbit)) = (mem.u32(p), mem.u32(p.offset(4))) else {
            return StackMap::Unusable;
        };
        let (n, nbit) = (n as i32, nbit as i32);
        if n <= 0 || nbit < 0 {
            return StackMap::Unusable;
        }
        if nbit == 0 {
            return StackMap::Empty;
        }
        if index < 0 || index >= n {
            return StackMap::Unusable;
        }
        let row = (nbit as u64).div_ceil(8);
        match mem.read(p.offset(8 + row * index as u64), row as usize) {
            Ok(bits) => StackMap::Bits(nbit as u32, bits.into_owned()),
            Err(_) => StackMap::Unusable,
        }
    }

    /// Pointers into the stack from the goroutine's defer and panic records (as `scanstack`).
    pub(super) fn defers_and_panics(
        &self,
        g: &Goroutine,
        l: &Layout,
        stack: &StackMem,
        first: usize,
        st: &mut ScanState,
    ) {
        let mem = self.rt.mem();
        let frame_of = |a: u64| -> Option<u32> {
            self.out.frames[first..]
                .iter()
                .position(|f| a >= f.sp && a < f.fp)
                .map(|i| (first + i) as u32)
        };
        let mut d = mem.u64(g.g.offset(l.defer)).unwrap_or(0);
        for _ in 0..100_000 {
            if d == 0 {
                break;
            }
            for off in [l.defer_fn, l.defer_link].into_iter().flatten() {
                let a = d.wrapping_add(off);
                if stack.contains(a) {
                    if let Some(frame) = frame_of(a) {
                        if stack.word(a).unwrap_or(0) != 0 {
                            self.add_slot(stack, st, a, frame, false);
                        }
                    }
                } else if let Ok(v) = mem.u64(Addr(a)) {
                    if stack.contains(v) {
                        st.precise.push(v);
                    }
                }
            }
            d = match l.defer_link.map(|o| mem.u64(Addr(d.wrapping_add(o)))) {
                Some(Ok(next)) => next,
                _ => break,
            };
        }
        if let Ok(p) = mem.u64(g.g.offset(l.panic)) {
            if stack.contains(p) {
                st.precise.push(p);
            }
        }
    }

    /// Scans the stack objects reached from pointers into the stack, precise ones first.
    pub(super) fn scan_objects(&mut self, stack: &StackMem, st: &mut ScanState) {
        if st.objects.is_empty() {
            return;
        }
        st.objects.sort_by_key(|o| o.addr);
        let mem = self.rt.mem();
        let mut unreadable = 0;
        loop {
            let (p, conservative) = if let Some(p) = st.precise.pop() {
                (p, false)
            } else if let Some(p) = st.cons.pop() {
                (p, true)
            } else {
                break;
            };
            let i = st.objects.partition_point(|o| o.addr <= p);
            let Some(i) = i.checked_sub(1) else {
                continue;
            };
            let o = &mut st.objects[i];
            if p >= o.addr.saturating_add(o.size) || o.scanned {
                continue;
            }
            o.scanned = true;
            if o.ptr_bytes < 0 {
                unreadable += 1;
                continue;
            }
            let (addr, frame, gcdata) = (o.addr, o.frame, o.gcdata);
            let words = (o.ptr_bytes as u64)
                .min(o.size)
                .min(stack.hi.saturating_sub(addr))
                / PTR;
            let Ok(mask) = mem.read(Addr(gcdata), words.div_ceil(8) as usize) else {
                unreadable += 1;
                continue;
            };
            let mask = mask.into_owned();
            for w in 0..words {
                if bit(&mask, w) {
                    self.add_slot(stack, st, addr + w * PTR, frame, conservative);
                }
            }
        }
        self.out.skipped_frames += unreadable;
    }
}

/// One bitmap of a FUNCDATA stack map.
enum StackMap {
    /// Missing, damaged, or indexed out of range (the runtime throws "bad symbol table").
    Unusable,
    /// The map has no bits: nothing to scan.
    Empty,
    /// The bit count and the bitmap at the index.
    Bits(u32, Vec<u8>),
}

/// Whether bit `i` is set in a little-endian bitmap.
fn bit(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b >> (i % 8) & 1 == 1)
}
