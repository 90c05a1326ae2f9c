//! GC roots: the words outside the heap that the runtime treats as pointers, named for people.

use std::collections::HashMap;

use serde::Serialize;

use crate::dwarf::TypeRef;
use crate::memory::Addr;
use crate::runtime::{Runtime, RuntimeError};

/// Where a root lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A global variable in the data or bss section.
    Global,
    /// A goroutine's stack frame.
    Stack,
    /// Runtime-internal references (finalizers, specials, …).
    Runtime,
}

/// A named group of pointer words: one global variable, one stack frame, one runtime structure.
#[derive(Debug, Clone)]
pub struct Root {
    /// What kind of root.
    pub kind: RootKind,
    /// A name a person can read: `main.balances`, `goroutine 7 main.worker`.
    pub name: String,
    /// The words that hold pointers, with an optional name for each (a field or local).
    pub slots: Vec<(Addr, Option<String>)>,
    /// For a global: where its value starts and its DWARF type (to name fields by offset).
    pub var: Option<(Addr, TypeRef)>,
    /// For a map whose header lives on a stack: its index in the decoded maps (the root is the
    /// map: its words are the header's and its stack-held buckets' or group's).
    pub map: Option<u32>,
}

/// A map whose header lives in a goroutine's stack frame: the map never escaped.
#[derive(Debug, Clone)]
pub struct StackHeader {
    /// The frame: `goroutine 7 main.worker`.
    pub frame: String,
    /// The variable holding the map, when DWARF names one.
    pub var: Option<String>,
    /// Where the header is.
    pub header: Addr,
    /// The header's DWARF struct type (`hash<K,V>` or `map<K,V>`), when the variable gives it.
    pub ty: Option<TypeRef>,
    /// The goroutine's stack extent, [lo, hi): buckets or groups there belong to the frame.
    pub stack: (u64, u64),
}

/// Goroutine stacks as map discovery needs them: headers that map variables point at, and
/// every frame's pointer words, to find headers from the heap storage they point to.
#[derive(Debug, Default)]
pub struct StackMaps {
    /// Headers that named map variables point at.
    pub headers: Vec<StackHeader>,
    /// Frames: `goroutine 7 main.worker` and the goroutine's stack extent.
    pub frames: Vec<(String, (u64, u64))>,
    /// Pointer words of the frames: (value, word address, frame), sorted.
    pub words: Vec<(u64, Addr, u32)>,
    /// Places in frames that may hold a header no variable names and no typed storage leads
    /// to, with the header types their function's code uses.
    pub guesses: Vec<HeaderGuess>,
}

/// A frame word that may be the storage pointer of a map header no variable names: the header
/// it would belong to, and the map header types the frame's function refers to.
#[derive(Debug, Clone)]
pub struct HeaderGuess {
    /// The frame.
    pub frame: u32,
    /// Where the header would start.
    pub header: Addr,
    /// Header types (`hash<K,V>` or `map<K,V>`) of the maps the function uses.
    pub types: Vec<TypeRef>,
}

impl StackMaps {
    /// A header at `header` in frame `frame`, found without a variable, if it lies in the
    /// frame's goroutine stack.
    pub fn unnamed(&self, frame: u32, header: Addr) -> Option<StackHeader> {
        let (name, (lo, hi)) = self.frames.get(frame as usize)?;
        (header.0 >= *lo && header.0 < *hi).then(|| StackHeader {
            frame: name.clone(),
            var: None,
            header,
            ty: None,
            stack: (*lo, *hi),
        })
    }

    /// The frame words holding exactly `value`.
    pub fn words_to(&self, value: u64) -> &[(u64, Addr, u32)] {
        let lo = self.words.partition_point(|w| w.0 < value);
        let hi = self.words.partition_point(|w| w.0 <= value);
        &self.words[lo..hi]
    }
}

/// A data/bss word's variable name, its field, and the variable's start and type.
type GlobalWord = (String, Option<String>, Option<(Addr, TypeRef)>);

/// A global variable's extent, for naming the pointer words that fall inside it.
struct GlobalVar {
    start: u64,
    end: u64,
    name: String,
    ty: Option<TypeRef>,
}

/// The roots of goroutine stacks, and what was found on the way.
#[derive(Debug, Default)]
pub struct FrameRoots {
    /// One root per frame with pointer words.
    pub roots: Vec<Root>,
    /// Typed local variables (type seeds).
    pub vars: Vec<crate::runtime::StackVar>,
    /// What map discovery needs of the stacks.
    pub stack_maps: StackMaps,
    /// Goroutines and frames that could not be unwound.
    pub skipped: u64,
}

impl Runtime<'_> {
    /// Pointer words of the data and bss sections, as the runtime's `gcdatamask`/`gcbssmask` mark
    /// them, grouped by the global variable (from DWARF) or, failing that, the symbol that holds
    /// them.
    /// When a mask cannot be read (it lies in the missing end of a truncated core), every word
    /// of its section is taken as a possible pointer, and a warning says so.
    pub fn global_roots(&self) -> Result<(Vec<Root>, Vec<String>), RuntimeError> {
        let md = "runtime.moduledata";
        let mut vars: Vec<GlobalVar> = self
            .dwarf()
            .variables()
            .map(|v| {
                let size =
                    v.ty.and_then(|t| self.dwarf().resolve(t).ok())
                        .map(|(_, t)| t.size)
                        .unwrap_or(0);
                let start = v.addr.wrapping_add(self.p.bias);
                GlobalVar {
                    start,
                    end: start.saturating_add(size.max(1)),
                    name: v.name,
                    ty: v.ty,
                }
            })
            .collect();
        vars.sort_by_key(|v| v.start);
        // `var p = &T{…}` is often laid out statically: name that value after the pointer.
        let statics: Vec<GlobalVar> = vars
            .iter()
            .filter_map(|v| {
                let pointee = match self.dwarf().info(v.ty?).ok()?.kind {
                    crate::dwarf::TypeKind::Pointer(p) => p?,
                    _ => return None,
                };
                let target = self.mem().u64(Addr(v.start)).ok()?;
                let covered = vars.partition_point(|w| w.start <= target);
                if covered > 0 && target < vars[covered - 1].end {
                    return None;
                }
                let size = self.dwarf().resolve(pointee).ok()?.1.size;
                (size > 0 && self.mem().in_core(Addr(target))).then(|| GlobalVar {
                    start: target,
                    end: target.saturating_add(size),
                    name: v.name.clone(),
                    ty: Some(pointee),
                })
            })
            .collect();
        vars.extend(statics);
        vars.sort_by_key(|v| v.start);
        let mut roots: Vec<Root> = Vec::new();
        let mut unread: Vec<String> = Vec::new();
        let mut rebuilt: Vec<String> = Vec::new();
        // Data and bss lie in the executable's segments: no mask has more bits than they have words.
        let exe_words =
            (self.p.exe.segments.iter()).fold(0u64, |n, s| n.saturating_add(s.memsz)) / 8;
        let mut module = self.global("runtime.firstmoduledata")?;
        for _ in 0..64 {
            for (start, end, mask, prog) in [
                ("data", "edata", "gcdatamask", "gcdata"),
                ("bss", "ebss", "gcbssmask", "gcbss"),
            ] {
                let base = self.field_ptr(module, md, start)?;
                // One bit per word of the section: a damaged count cannot ask for more.
                let words =
                    (self.field_uint(module, md, end)?.saturating_sub(base.0) / 8).min(exe_words);
                let nbits = self
                    .field_uint(module, md, &format!("{mask}.n"))?
                    .min(words);
                let bytes = self.field_ptr(module, md, &format!("{mask}.bytedata"))?;
                let len = nbits.div_ceil(8) as usize;
                let bits = match self.mem().read(bytes, len) {
                    Ok(bits) => bits,
                    Err(source) => match self.mask_from_program(module, prog, nbits) {
                        // The runtime built the mask from this program: the same bits.
                        Some(bits) => {
                            rebuilt.push(format!("moduledata.{mask} ({source})"));
                            std::borrow::Cow::Owned(bits)
                        }
                        None => {
                            unread.push(format!("moduledata.{mask} ({source})"));
                            std::borrow::Cow::Owned(vec![0xff; len])
                        }
                    },
                };
                for i in 0..nbits {
                    if bits[(i / 8) as usize] >> (i % 8) & 1 == 0 {
                        continue;
                    }
                    let slot = base.offset(8 * i);
                    let (name, field, var) = self.name_global_word(&vars, slot);
                    match roots.last_mut() {
                        Some(r) if r.name == name => r.slots.push((slot, field)),
                        _ => roots.push(Root {
                            kind: RootKind::Global,
                            name,
                            slots: vec![(slot, field)],
                            var,
                            map: None,
                        }),
                    }
                }
            }
            module = self.field_ptr(module, md, "next")?;
            if module.0 == 0 {
                break;
            }
        }
        let mut warnings = Vec::new();
        if !rebuilt.is_empty() {
            warnings.push(format!(
                "the pointer masks of the global variables are not in the core: {}; they were rebuilt from the executable's GC programs (moduledata.gcdata, gcbss), as the runtime built them",
                rebuilt.join(", ")
            ));
        }
        if !unread.is_empty() {
            warnings.push(format!(
                "the pointer masks of the global variables cannot be read: {}; every word of data and bss that points into the heap counts as a root, so objects only a non-pointer word seems to point to show as reachable",
                unread.join(", ")
            ));
        }
        Ok((roots, warnings))
    }

    /// A section's pointer mask of `nbits` bits, rebuilt from the GC program that moduledata's
    /// field `prog` points at (in the executable's read-only data).
    fn mask_from_program(&self, module: Addr, prog: &str, nbits: u64) -> Option<Vec<u8>> {
        let at = self.field_ptr(module, "runtime.moduledata", prog).ok()?;
        // A program is never longer than its bits written out, plus an instruction per 127.
        let most = nbits.div_ceil(8) + nbits / 127 + 16;
        let len = self.mem().mapped_from(at).min(most);
        let program = self.mem().read(at, usize::try_from(len).ok()?).ok()?;
        let mut bits = crate::runtime::gcprog::run(&program, nbits)?;
        bits.resize(nbits.div_ceil(8) as usize, 0);
        Some(bits)
    }

    /// The variable (and byte offset inside it) that a data/bss word belongs to.
    fn name_global_word(&self, vars: &[GlobalVar], slot: Addr) -> GlobalWord {
        let i = vars.partition_point(|v| v.start <= slot.0);
        if let Some(v) = i.checked_sub(1).and_then(|i| vars.get(i)) {
            if slot.0 < v.end {
                let off = slot.0 - v.start;
                return (
                    v.name.clone(),
                    (off > 0).then(|| format!("+{off}")),
                    v.ty.map(|t| (Addr(v.start), t)),
                );
            }
        }
        let link = slot.0.wrapping_sub(self.p.bias);
        let name = self
            .p
            .symbols
            .lookup(link)
            .map(str::to_string)
            .unwrap_or_else(|| format!("global {slot}"));
        (name, None, None)
    }
}

impl Runtime<'_> {
    /// Live pointer slots of every goroutine's stack frames, one root per frame, and the map
    /// headers that live in those frames.
    pub fn frame_roots(&self) -> Result<FrameRoots, RuntimeError> {
        let sr = self.stack_roots()?;
        let mut roots: Vec<Root> = sr
            .frames
            .iter()
            .map(|f| Root {
                kind: RootKind::Stack,
                name: format!("goroutine {} {}", f.goid, f.func),
                slots: Vec::new(),
                var: None,
                map: None,
            })
            .collect();
        for s in &sr.slots {
            if let Some(r) = roots.get_mut(s.frame as usize) {
                r.slots.push((s.addr, s.name.clone()));
            }
        }
        let stack_maps = self.stack_maps(&sr);
        roots.retain(|r| !r.slots.is_empty());
        Ok(FrameRoots {
            roots,
            vars: sr.vars,
            stack_maps,
            skipped: sr.skipped_goroutines + sr.skipped_frames,
        })
    }

    /// Map headers in their own goroutine's stack (the compiler keeps a map that never escapes
    /// in its frame; only grown buckets or groups go to the heap) that map variables point at,
    /// and the frames' words, for headers no variable names.
    fn stack_maps(&self, sr: &crate::runtime::StackRoots) -> StackMaps {
        // Each goroutine's stack extent, from its frames.
        let mut extent: std::collections::HashMap<u64, (u64, u64)> = Default::default();
        for f in &sr.frames {
            let e = extent.entry(f.goid).or_insert((f.sp, f.fp));
            e.0 = e.0.min(f.sp);
            e.1 = e.1.max(f.fp);
        }
        let mut out = StackMaps {
            frames: (sr.frames.iter())
                .map(|f| {
                    let e = extent.get(&f.goid).copied().unwrap_or((f.sp, f.fp));
                    (format!("goroutine {} {}", f.goid, f.func), e)
                })
                .collect(),
            ..Default::default()
        };
        let mem = self.mem();
        out.words = (sr.slots.iter())
            .filter(|s| !s.is_conservative())
            .filter_map(|s| Some((mem.u64(s.addr).ok()?, s.addr, s.frame)))
            .filter(|w| w.0 != 0)
            .collect();
        out.words.sort_unstable();
        out.guesses = self.header_guesses(sr, &out.words);
        let d = self.dwarf();
        for v in &sr.vars {
            let Some(ty) = d.map_header_type(v.ty) else {
                continue;
            };
            let Ok(header) = mem.u64(v.addr) else {
                continue;
            };
            if out.headers.iter().any(|h| h.header.0 == header) {
                continue;
            }
            if let Some(mut h) = out.unnamed(v.frame, Addr(header)) {
                h.var = Some(v.name.clone());
                h.ty = Some(ty);
                out.headers.push(h);
            }
        }
        out
    }
}

impl Runtime<'_> {
    /// Frame words that may be a map header's storage pointer (`buckets`, `dirPtr`), in frames
    /// of functions whose code uses map types: the header would start that far before them.
    fn header_guesses(
        &self,
        sr: &crate::runtime::StackRoots,
        words: &[(u64, Addr, u32)],
    ) -> Vec<HeaderGuess> {
        let d = self.dwarf();
        let header = self.features.map_header_type();
        let Ok(off) = d.offset(header, self.features.map_storage_field()) else {
            return Vec::new();
        };
        // Map type descriptors by link-time address.
        let Some(base) = self
            .global("runtime.firstmoduledata")
            .and_then(|md| self.field_uint(md, "runtime.moduledata", "types"))
            .ok()
            .map(|b| b.wrapping_sub(self.p.bias))
        else {
            return Vec::new();
        };
        let descriptors: HashMap<u64, TypeRef> = (d.named_types())
            .filter(|(n, _)| n.starts_with("map["))
            .filter_map(|(_, t)| {
                let rt = d.info(t).ok()?.runtime_type?;
                Some((base.wrapping_add(rt), d.map_header_type(t)?))
            })
            .collect();
        if descriptors.is_empty() {
            return Vec::new();
        }
        // The map types each frame's function uses, once per function.
        let mut by_function: HashMap<u64, Vec<TypeRef>> = HashMap::new();
        let frame_types: Vec<Vec<TypeRef>> = (sr.frames.iter())
            .map(|f| {
                let pc = f.pc.wrapping_sub(self.p.bias).wrapping_sub(1);
                let Some((start, size)) = self.p.symbols.extent(pc) else {
                    return Vec::new();
                };
                (by_function.entry(start))
                    .or_insert_with(|| {
                        let Some(code) = self.p.exe.read_at(start, size as usize) else {
                            return Vec::new();
                        };
                        let mut types: Vec<TypeRef> = crate::runtime::code::pc_relative_targets(
                            code,
                            start,
                            self.p.core.arch,
                        )
                        .into_iter()
                        .filter_map(|a| descriptors.get(&a).copied())
                        .collect();
                        types.sort_unstable();
                        types.dedup();
                        types
                    })
                    .clone()
            })
            .collect();
        (words.iter())
            .filter_map(|&(_, slot, frame)| {
                let types = frame_types.get(frame as usize)?;
                let header = Addr(slot.0.checked_sub(off)?);
                (!types.is_empty()).then(|| HeaderGuess {
                    frame,
                    header,
                    types: types.clone(),
                })
            })
            .collect()
    }
}

/// Offsets and names of a struct's pointer words.
type PointerFields = Vec<(u64, String)>;

/// Special records that the GC treats as roots, by the constant naming their kind and the
/// struct holding them; the finalizer's object also keeps what it points to alive.
const ROOT_SPECIALS: [(&str, &str, &str); 3] = [
    (
        "runtime._KindSpecialFinalizer",
        "runtime.specialfinalizer",
        "finalizer",
    ),
    (
        "runtime._KindSpecialWeakHandle",
        "runtime.specialWeakHandle",
        "weak handle",
    ),
    (
        "runtime._KindSpecialCleanup",
        "runtime.specialCleanup",
        "cleanup",
    ),
];

impl Runtime<'_> {
    /// Offsets of the pointer-typed words in a runtime struct, looking one struct level deep and
    /// skipping the embedded `special` header.
    fn pointer_fields(&self, ty: &str) -> PointerFields {
        let Ok(t) = self.dwarf().struct_named(ty) else {
            return Vec::new();
        };
        let crate::dwarf::TypeKind::Struct(fields) = &t.kind else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for f in fields
            .iter()
            .filter(|f| f.name != "special" && f.name != "_")
        {
            let Some((_, ft)) = f.ty.and_then(|r| self.dwarf().resolve(r).ok()) else {
                continue;
            };
            match &ft.kind {
                crate::dwarf::TypeKind::Pointer(_) => out.push((f.offset, f.name.clone())),
                crate::dwarf::TypeKind::Struct(inner) => {
                    for g in inner {
                        let is_ptr = g.ty.and_then(|r| self.dwarf().resolve(r).ok()).is_some_and(
                            |(_, t)| matches!(t.kind, crate::dwarf::TypeKind::Pointer(_)),
                        );
                        if is_ptr {
                            out.push((f.offset + g.offset, format!("{}.{}", f.name, g.name)));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Roots the runtime keeps outside globals and stacks: finalizers, cleanups and weak handles
    /// attached to heap objects, and finalizers queued to run.
    pub fn runtime_roots(
        &self,
        heap: &crate::heap::Heap,
        bits: &crate::heap::PointerBits,
    ) -> Result<Vec<Root>, RuntimeError> {
        let d = self.dwarf();
        let mem = self.mem();
        let mut roots = Vec::new();
        let kinds: Vec<(u8, PointerFields, &str)> = ROOT_SPECIALS
            .iter()
            .filter_map(|(k, ty, label)| {
                Some((d.constant(k)? as u8, self.pointer_fields(ty), *label))
            })
            .collect();
        let finalizer_kind = d.constant("runtime._KindSpecialFinalizer").map(|k| k as u8);
        let specials_off = d.offset("runtime.mspan", "specials")?;
        let next_off = d.offset("runtime.special", "next")?;
        let (off_off, off_size) = (
            d.offset("runtime.special", "offset")?,
            d.field_size("runtime.special", "offset").unwrap_or(2),
        );
        let kind_off = d.offset("runtime.special", "kind")?;
        for (si, span) in heap.spans.iter().enumerate() {
            let Ok(mut sp) = mem.ptr(span.mspan.offset(specials_off)) else {
                continue;
            };
            let mut guard = 0;
            while sp.0 != 0 && guard < 1 << 20 {
                guard += 1;
                let (Ok(kind), Ok(offset)) = (
                    mem.u8(sp.offset(kind_off)),
                    mem.uint(sp.offset(off_off), off_size),
                ) else {
                    break;
                };
                if let Some((_, fields, label)) = kinds.iter().find(|(k, _, _)| *k == kind) {
                    let obj = span.base.offset(offset);
                    let mut slots: Vec<(Addr, Option<String>)> = fields
                        .iter()
                        .map(|(o, n)| (sp.offset(*o), Some(n.clone())))
                        .collect();
                    if Some(kind) == finalizer_kind && span.elemsize > 0 {
                        // The object itself stays unmarked, but everything it points to is live.
                        let slot = offset / span.elemsize;
                        let mut words = Vec::new();
                        let _ = bits.pointer_words(mem, heap, si, slot, &mut words);
                        slots.extend(words.into_iter().map(|w| (w, Some("object".to_string()))));
                    }
                    roots.push(Root {
                        kind: RootKind::Runtime,
                        name: format!("{label} on {obj}"),
                        slots,
                        var: None,
                        map: None,
                    });
                }
                sp = mem.ptr(sp.offset(next_off)).unwrap_or(Addr(0));
            }
        }
        roots.extend(self.queued_finalizers()?);
        roots.extend(self.tiny_blocks()?);
        Ok(roots)
    }

    /// Each P's current tiny-allocator block (`mcache.tiny`, a uintptr the GC greys itself).
    fn tiny_blocks(&self) -> Result<Vec<Root>, RuntimeError> {
        let d = self.dwarf();
        let (Ok(allp), Ok(tiny_off)) = (
            self.global("runtime.allp"),
            d.offset("runtime.mcache", "tiny"),
        ) else {
            return Ok(Vec::new());
        };
        let mem = self.mem();
        let arr = mem.ptr(allp).map_err(|source| RuntimeError::Memory {
            what: "runtime.allp".into(),
            source,
        })?;
        let n = mem.u64(allp.offset(8)).unwrap_or(0).min(1 << 16);
        let mut slots = Vec::new();
        for i in 0..n {
            let Ok(pp) = mem.ptr(arr.offset(8 * i)) else {
                continue;
            };
            if pp.0 == 0 {
                continue;
            }
            let mcache = self.field_ptr(pp, "runtime.p", "mcache")?;
            if mcache.0 != 0 {
                slots.push((mcache.offset(tiny_off), Some(format!("P{i}"))));
            }
        }
        Ok(if slots.is_empty() {
            Vec::new()
        } else {
            vec![Root {
                kind: RootKind::Runtime,
                name: "tiny allocator blocks".to_string(),
                slots,
                var: None,
                map: None,
            }]
        })
    }

    /// Finalizers waiting to run (`runtime.allfin` blocks): their functions and arguments.
    fn queued_finalizers(&self) -> Result<Vec<Root>, RuntimeError> {
        let d = self.dwarf();
        let Some(block_ty) = self.features.finalizer_block_type else {
            return Ok(Vec::new());
        };
        let Ok(allfin) = self.global("runtime.allfin") else {
            return Ok(Vec::new());
        };
        let fin_off = d.offset(block_ty, "fin")?;
        let fin_size = d.size_of("runtime.finalizer")?;
        let fn_off = d.offset("runtime.finalizer", "fn")?;
        let arg_off = d.offset("runtime.finalizer", "arg")?;
        let mut slots = Vec::new();
        let mut b = self.mem().ptr(allfin).unwrap_or(Addr(0));
        let mut guard = 0;
        while b.0 != 0 && guard < 1 << 16 {
            guard += 1;
            let cnt = self.field_uint(b, block_ty, "cnt")?;
            for i in 0..cnt.min(4096) {
                let f = b.offset(fin_off.saturating_add(i.saturating_mul(fin_size)));
                slots.push((f.offset(fn_off), Some("fn".to_string())));
                slots.push((f.offset(arg_off), Some("arg".to_string())));
            }
            b = self.field_ptr(b, block_ty, "alllink")?;
        }
        Ok(if slots.is_empty() {
            Vec::new()
        } else {
            vec![Root {
                kind: RootKind::Runtime,
                name: "queued finalizers".to_string(),
                slots,
                var: None,
                map: None,
            }]
        })
    }
}

/// Gives each map whose header lives on a stack a root of its own, named for its variable,
/// holding the words of its header and of its stack-held buckets or group (moved out of the
/// frames' roots), so that the map is one node of the graph.
pub fn add_stack_map_roots(roots: &mut Vec<Root>, maps: &mut crate::maps::Maps) {
    use crate::maps::MapHome;
    let headers = std::mem::take(&mut maps.stack_headers);
    // (start, end, map) of every stack range a map owns, sorted.
    let mut ranges: Vec<(u64, u64, u32)> = Vec::new();
    for (mi, m) in maps.maps.iter().enumerate() {
        if m.home != MapHome::Stack(u32::MAX) {
            continue;
        }
        let Some(h) = headers.iter().find(|h| h.header == m.addr) else {
            continue;
        };
        let header_size = m.header_size.max(8);
        ranges.push((
            h.header.0,
            h.header.0.saturating_add(header_size),
            mi as u32,
        ));
        for &(b, size) in &m.stack_containers {
            ranges.push((b.0, b.0.saturating_add(size), mi as u32));
        }
    }
    if ranges.is_empty() {
        return;
    }
    ranges.sort_unstable();
    let mut moved: std::collections::BTreeMap<u32, Vec<(Addr, Option<String>)>> =
        Default::default();
    for r in roots.iter_mut().filter(|r| r.kind == RootKind::Stack) {
        r.slots.retain(|&(a, _)| {
            let i = ranges.partition_point(|x| x.0 <= a.0);
            match i.checked_sub(1).map(|i| ranges[i]) {
                Some((_, end, mi)) if a.0 < end => {
                    moved.entry(mi).or_default().push((a, None));
                    false
                }
                _ => true,
            }
        });
    }
    roots.retain(|r| !r.slots.is_empty());
    for (mi, m) in maps.maps.iter_mut().enumerate() {
        if m.home != MapHome::Stack(u32::MAX) {
            continue;
        }
        let Some(h) = headers.iter().find(|h| h.header == m.addr) else {
            continue;
        };
        let slots = moved.remove(&(mi as u32)).unwrap_or_default();
        m.home = MapHome::Stack(roots.len() as u32);
        // Without a variable's name, the map's type names it in its frame.
        let var = h.var.clone().unwrap_or_else(|| m.type_name.clone());
        roots.push(Root {
            kind: RootKind::Stack,
            name: format!("{}: {var}", h.frame),
            slots,
            var: None,
            map: Some(mi as u32),
        });
    }
}
