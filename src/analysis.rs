//! The whole-heap analysis: spans → objects → roots → graph → dominators → retained sizes.

use std::time::{Duration, Instant};

use crate::graph::{dominators_and_retained_reporting, Dominators, Retained};
use crate::heap::{Heap, HeapIndex, HeapTotals, ObjId, Objects, PointerBits};
use crate::maps::{Ctx, Maps};
use crate::memory::ReadAhead;
use crate::objgraph::{HeapGraph, RawEdges};
use crate::process::Process;
use crate::roots::Root;
use crate::runtime::{Runtime, RuntimeError};
use crate::types::{Edges, HeapParts, ObjectTypes, TypeScope};

/// Receives progress of long phases; the command line draws it, tests ignore it.
pub trait Progress: Sync {
    /// A phase starts; `total` is its unit count when known.
    fn start(&self, _phase: &'static str, _total: Option<u64>) {}
    /// `n` more units of the phase are done (called from any thread).
    fn advance(&self, _n: u64) {}
    /// The phase finished.
    fn finish(&self) {}
}

/// The process's memory as the driver meets it between phases. The binary implements it with
/// its allocator; the analysis itself never calls an allocator.
pub trait Memory: Sync {
    /// The heap holds `objects` live objects; the per-object tables are allocated next. The
    /// one place to decide where those tables go (memory or scratch files).
    fn before_tables(&self, _objects: u64) {}
    /// A phase has freed the many small blocks it used.
    fn phase_freed(&self) {}
}

/// The system allocator's memory, with no policy of its own.
#[derive(Debug, Default)]
pub struct PlainMemory;

impl Memory for PlainMemory {}

/// What a truncated core leaves out of the heap, in one line; `None` for a whole core.
fn truncation_warning(p: &Process, heap: &Heap) -> Option<String> {
    let missing = p.core.truncated_bytes;
    if missing == 0 {
        return None;
    }
    let have = p.core.file.bytes().len() as u64;
    let (mut span_bytes, mut cut_bytes, mut cut_spans) = (0u64, 0u64, 0u64);
    for s in &heap.spans {
        let (base, len) = s.extent();
        let cut = p.mem.truncated_bytes_in(base, len);
        span_bytes += len;
        cut_bytes += cut;
        cut_spans += u64::from(cut > 0);
    }
    let mut line = format!(
        "the core is truncated: {missing} bytes are missing ({have} of {} present)",
        have + missing
    );
    if cut_bytes > 0 {
        line.push_str(&format!(
            "; {cut_bytes} of the {span_bytes} bytes of the {} in-use spans read ({cut_spans} spans) lie in the missing part: their objects are counted, what they point to is not followed",
            heap.spans.len()
        ));
    }
    if heap.skipped_spans > 0 {
        line.push_str(&format!(
            "; {} spans whose records could not be read were left out, with their objects",
            heap.skipped_spans
        ));
    }
    Some(line)
}

/// What damaged span records leave out of the heap, in one line.
fn skipped_spans_warning(skipped: u64) -> String {
    format!(
        "{skipped} heap spans could not be read (their records in the core are damaged): their objects are left out of every figure, and what only they point to shows as unreachable; how many bytes they held cannot be known"
    )
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// How long a phase took and the process's peak memory when it ended.
#[derive(Debug, Clone)]
pub struct PhaseTiming {
    /// Phase name.
    pub phase: &'static str,
    /// Wall time.
    pub wall: Duration,
    /// Peak resident memory of coreheap so far, bytes (0 where unknown).
    pub peak_rss_bytes: u64,
    /// Anonymous resident memory when the phase ended: what coreheap holds beyond the mapped
    /// core and executable (0 where unknown).
    pub anon_rss_bytes: u64,
}

/// Everything known about the heap's objects, their references and what retains what.
pub struct Analysis {
    /// Spans and liveness.
    pub heap: Heap,
    /// Address → span lookup.
    pub index: HeapIndex,
    /// Object ids.
    pub objects: Objects,
    /// Roots, in node order after the objects and map entries.
    pub roots: Vec<Root>,
    /// Object types.
    pub types: ObjectTypes,
    /// How pointer words are found in objects.
    pub bits: PointerBits,
    /// Decoded maps.
    pub maps: Maps,
    /// The object graph.
    pub graph: HeapGraph,
    /// Its dominator tree from the super-root.
    pub doms: Dominators,
    /// Retained bytes per node.
    pub retained: Retained,
    /// Phase timings.
    pub timings: Vec<PhaseTiming>,
    /// Problems that did not stop the analysis.
    pub warnings: Vec<String>,
    /// Typed local variables on goroutine stacks (type seeds).
    pub stack_vars: Vec<crate::runtime::StackVar>,
    /// `runtime.types`: an interface's type word less this is its DWARF runtime-type offset.
    pub types_base: Option<u64>,
    /// [`Analysis::reachability`], once counted.
    reach: std::sync::OnceLock<Reachability>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("objects", &self.objects.len())
            .field("roots", &self.roots.len())
            .finish()
    }
}

/// The warning for reachable objects that hold pointers no sound heap holds, if any do.
fn dangling_warning(dangling: &[u32], doms: &Dominators, objects: &Objects) -> Option<String> {
    let last = std::cell::Cell::new(0);
    let (n, bytes) = (dangling.iter())
        .filter(|&&o| doms.is_reachable(o))
        .fold((0u64, 0u64), |(n, b), &o| {
            (n + 1, b + objects.size_after(ObjId(o), &last))
        });
    (n > 0).then(|| {
        let (objects, hold) = if n == 1 {
            ("object", "holds a pointer")
        } else {
            ("objects", "hold pointers")
        };
        format!(
            "{n} reachable {objects} ({}) {hold} to no live object (a free slot or unmapped memory): the heap is damaged there, and what such a pointer held is missing from retained bytes",
            crate::report::human_bytes(bytes)
        )
    })
}

/// Where type descriptors live (for names in malloc headers), when this runtime has headers.
fn runtime_types(rt: &Runtime) -> Option<crate::maps::RuntimeTypes> {
    if !rt.features.allocation_headers {
        return None;
    }
    crate::runtime::RuntimeTypes::new(rt)
}

/// A kB field of /proc/self/status (`VmHWM:`, `RssAnon:`), 0 when the OS does not tell.
pub fn proc_status_kb(field: &str) -> u64 {
    proc_kb("/proc/self/status", field).unwrap_or(0)
}

/// Peak bytes of per-object tables per live object, as measured on the benchmark cores
/// (31–46, docs/performance.md), rounded up.
pub const TABLE_BYTES_PER_OBJECT: u64 = 48;

/// The kernel's estimate of memory available without swapping, bytes
/// (`COREHEAP_MEM_AVAILABLE` overrides it, for tests of the switch to scratch files).
pub fn mem_available() -> Option<u64> {
    if let Some(v) = std::env::var("COREHEAP_MEM_AVAILABLE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Some(v);
    }
    Some(proc_kb("/proc/meminfo", "MemAvailable:")? * 1024)
}

/// A kB field (`MemAvailable:`, `VmHWM:`) of a /proc file of `Field: value kB` lines.
pub fn proc_kb(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Byte totals of the heap as the analysis sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Reachability {
    /// Live (allocated, not garbage) objects.
    pub allocated_objects: u64,
    /// Their bytes.
    pub allocated_bytes: u64,
    /// Objects reachable from the roots.
    pub reachable_objects: u64,
    /// Their bytes.
    pub reachable_bytes: u64,
    /// Allocated objects no root reaches.
    pub unreachable_objects: u64,
    /// Their bytes.
    pub unreachable_bytes: u64,
}

impl Analysis {
    /// Runs every phase on an opened process, inferring the type of every object it can.
    pub fn run(p: &Process, progress: &dyn Progress) -> Result<Analysis, RuntimeError> {
        Analysis::run_scoped(p, progress, &PlainMemory, TypeScope::All)
    }

    /// Runs every phase, inferring types as far as `scope` asks.
    // One function: it is the pipeline's script, phase after phase, each phase's results the
    // next ones' inputs and all of them the `Analysis` returned; each phase's own work is a
    // call into its module.
    pub fn run_scoped(
        p: &Process,
        progress: &dyn Progress,
        memory: &dyn Memory,
        scope: TypeScope,
    ) -> Result<Analysis, RuntimeError> {
        let rt = Runtime::new(p);
        let mut timings = Vec::new();
        let mut phase = |name: &'static str, t: Instant| {
            progress.finish();
            timings.push(PhaseTiming {
                phase: name,
                wall: t.elapsed(),
                peak_rss_bytes: proc_status_kb("VmHWM:") * 1024,
                anon_rss_bytes: proc_status_kb("RssAnon:") * 1024,
            });
        };

        let t = Instant::now();
        progress.start("reading spans", None);
        let heap = Heap::read(&rt)?;
        let index = HeapIndex::new(&heap, crate::heap::PAGE_SIZE);
        let objects = Objects::new(&heap, crate::heap::malloc_header_bytes(&rt));
        memory.before_tables(objects.len() as u64);
        // From here on the heap is read object by object, each phase asking ahead for the
        // spans it needs: read-ahead around a miss would fill the page cache with spans no
        // phase reads, pushing out the ones the next phase (or the next run) needs.
        p.mem.advise([heap.extent()], ReadAhead::Random);
        // When the spans would not all stay cached beside the tables, pages read only to
        // bridge gaps would push out pages a later pass (or the next run) needs.
        let span_bytes = (heap.spans.iter()).fold(0u64, |n, s| n.saturating_add(s.extent().1));
        let tables = (objects.len() as u64).saturating_mul(TABLE_BYTES_PER_OBJECT);
        if mem_available().is_some_and(|a| span_bytes.saturating_add(tables) > a) {
            p.mem.fetch_only_needed();
        }
        phase("spans", t);

        let t = Instant::now();
        progress.start("finding roots", None);
        let bits = PointerBits::new(&rt, &heap)?;
        let (mut roots, mut warnings) = rt.global_roots()?;
        if let Some(w) = truncation_warning(p, &heap) {
            warnings.insert(0, w);
        } else if heap.skipped_spans > 0 {
            warnings.insert(0, skipped_spans_warning(heap.skipped_spans));
        }
        let mut stack_vars = Vec::new();
        let mut stack_maps = crate::roots::StackMaps::default();
        match rt.frame_roots() {
            Ok(frames) => {
                roots.extend(frames.roots);
                stack_vars = frames.vars;
                stack_maps = frames.stack_maps;
                if frames.skipped > 0 {
                    warnings.push(format!(
                        "{} goroutines or stack frames could not be unwound; what only they hold shows as unreachable",
                        frames.skipped
                    ));
                }
            }
            Err(e) => warnings.push(format!("goroutine stacks were not scanned: {e}")),
        }
        if let Some(w) = rt.goroutine_list_damage() {
            warnings.push(w);
        }
        roots.extend(rt.runtime_roots(&heap, &bits)?);
        phase("roots", t);

        let t = Instant::now();
        progress.start("reading pointers", Some(objects.len() as u64));
        let mut raw = RawEdges::build(&p.mem, &heap, &index, &objects, &bits, &|n| {
            progress.advance(n)
        });
        let dangling = std::mem::take(&mut raw.dangling);
        // Reading pointers on every core grew and freed lists (a run holding a large map's
        // bucket array makes long ones): give back what the system allocator's per-thread
        // arenas hold, before the graph's peak.
        memory.phase_freed();
        phase("pointers", t);

        let t = Instant::now();
        progress.start("inferring types", None);
        let mut types = ObjectTypes::infer(
            &rt,
            HeapParts {
                heap: &heap,
                index: &index,
                objects: &objects,
                stack_vars: &stack_vars,
                edges: Edges::Resolved(&raw),
            },
            scope,
        )?;
        phase("types", t);

        let t = Instant::now();
        progress.start("decoding maps", None);
        let ctx = Ctx {
            dwarf: &p.dwarf,
            mem: &p.mem,
            heap: &heap,
            index: &index,
            objects: &objects,
        };
        let rtypes = runtime_types(&rt);
        // Where typed values lie outside the heap: globals and stack variables.
        let places: Vec<(crate::memory::Addr, crate::dwarf::TypeRef)> = (roots.iter())
            .filter_map(|r| r.var)
            .chain(stack_vars.iter().map(|v| (v.addr, v.ty)))
            .collect();
        let expunged = rt
            .global("sync.expunged")
            .ok()
            .and_then(|a| p.mem.u64(a).ok());
        let holders = crate::maps::Holders {
            sync: crate::maps::syncmap::SyncLayout::detect(&p.dwarf, &rt.features, expunged),
            pool: crate::maps::pool::PoolLayout::detect(&p.dwarf),
            places: &places,
        };
        let mut maps = Maps::decode(
            &ctx,
            &mut types,
            &raw,
            rtypes.as_ref(),
            &stack_maps,
            &holders,
        );
        crate::roots::add_stack_map_roots(&mut roots, &mut maps);
        warnings.extend(maps.warnings.iter().cloned());
        phase("maps", t);

        let t = Instant::now();
        let entries = maps.entries.len() as u64;
        progress.start(
            "building the object graph",
            Some(objects.len() as u64 + entries),
        );
        let graph = HeapGraph::build(&p.mem, &index, &objects, raw, &maps, &roots, &|n| {
            progress.advance(n)
        });
        if graph.unreadable_words > 0 && p.core.truncated_bytes == 0 {
            warnings.push(format!(
                "{} pointer words of live objects could not be read (damaged memory in the core): what only they point to shows as unreachable",
                graph.unreadable_words
            ));
        }
        // Building the graph allocated and freed many small blocks on every core.
        memory.phase_freed();
        phase("graph", t);

        let t = Instant::now();
        let nodes = graph.graph.node_count() as u64;
        progress.start("computing dominators", Some(5 * nodes));
        // Sweeps ask for sizes in increasing id order on each thread: remember the last span.
        thread_local! {
            static LAST_SPAN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        let size = |v| {
            if graph.is_object(v) {
                LAST_SPAN.with(|last| objects.size_after(ObjId(v), last))
            } else {
                0
            }
        };
        let (doms, retained) =
            dominators_and_retained_reporting(&graph.graph, graph.super_root(), size, &|n| {
                progress.advance(n)
            });
        // The tables are built: free small blocks would only hold memory the page cache can
        // use while reports read the core.
        memory.phase_freed();
        phase("dominators", t);
        if let Some(w) = dangling_warning(&dangling, &doms, &objects) {
            warnings.push(w);
        }

        Ok(Analysis {
            heap,
            index,
            objects,
            roots,
            types,
            bits,
            maps,
            graph,
            doms,
            retained,
            timings,
            warnings,
            stack_vars,
            types_base: rt
                .global("runtime.firstmoduledata")
                .and_then(|md| rt.field_uint(md, "runtime.moduledata", "types"))
                .ok(),
            reach: std::sync::OnceLock::new(),
        })
    }

    /// Types what the objects along `paths` (graph nodes, each path from a root) point to, as
    /// inference over every object would, after an analysis that typed only toward maps: what
    /// `top` and `path` name. Timed as a second `types` phase.
    pub fn type_paths(&mut self, p: &Process, paths: &[Vec<u32>]) -> Result<(), RuntimeError> {
        let t = Instant::now();
        let objects: Vec<Vec<ObjId>> = (paths.iter())
            .map(|path| {
                (path.iter().filter(|&&v| self.graph.is_object(v)))
                    .map(|&v| ObjId(v))
                    .collect()
            })
            .collect();
        let rt = Runtime::new(p);
        let parts = HeapParts {
            heap: &self.heap,
            index: &self.index,
            objects: &self.objects,
            stack_vars: &self.stack_vars,
            edges: Edges::Read(&self.bits),
        };
        self.types.type_along(&rt, parts, &objects)?;
        self.timings.push(PhaseTiming {
            phase: "types",
            wall: t.elapsed(),
            peak_rss_bytes: proc_status_kb("VmHWM:") * 1024,
            anon_rss_bytes: proc_status_kb("RssAnon:") * 1024,
        });
        Ok(())
    }

    /// The graph node standing for a map: its header object, or the root of a header that
    /// lives on a stack.
    pub fn map_node(&self, m: &crate::maps::DecodedMap) -> u32 {
        match m.home {
            crate::maps::MapHome::Heap(o) => o.0,
            crate::maps::MapHome::Stack(r) => self.graph.root_node(r as usize),
        }
    }

    /// The DWARF type and value address of the `any` at `eface` (for a pointer-shaped type the
    /// data word is the value).
    pub fn eface(
        &self,
        dwarf: &crate::dwarf::Dwarf,
        mem: &crate::memory::Memory,
        eface: crate::memory::Addr,
    ) -> Option<(crate::dwarf::TypeRef, crate::memory::Addr)> {
        let typ = mem.u64(eface).ok().filter(|&t| t != 0)?;
        let t = dwarf.type_by_runtime_offset(typ.checked_sub(self.types_base?)?)?;
        let data = eface.offset(8);
        Some(if dwarf.is_pointer_shaped(t) {
            (t, data)
        } else {
            (t, mem.ptr(data).ok()?)
        })
    }

    /// A node's own bytes: an object's slot size, 0 for entries and roots.
    pub fn shallow(&self, v: u32) -> u64 {
        if self.graph.is_object(v) {
            self.objects.size(ObjId(v))
        } else {
            0
        }
    }

    /// Bytes held by the per-object tables: object ids, graph, dominators, sizes.
    pub fn table_bytes(&self) -> u64 {
        (self.objects.heap_size_bytes()
            + self.graph.graph.heap_size_bytes()
            + self.doms.heap_size_bytes()
            + self.retained.heap_size_bytes()) as u64
    }

    /// Allocated, reachable and unreachable objects and bytes (counted once, on first use).
    pub fn reachability(&self) -> Reachability {
        *self.reach.get_or_init(|| self.count_reachable())
    }

    /// [`Analysis::reachability`]: a pass over every object, on every core.
    fn count_reachable(&self) -> Reachability {
        use rayon::prelude::*;
        let HeapTotals { objects, bytes, .. } = self.heap.totals();
        // Pieces of ids on every core, each remembering the last span it met.
        let (ro, rb) = crate::graph::pieces(0..self.graph.objects as usize, 1 << 16)
            .into_par_iter()
            .map(|ids| {
                let last = std::cell::Cell::new(0);
                let (mut ro, mut rb) = (0u64, 0u64);
                for id in ids.start as u32..ids.end as u32 {
                    if self.doms.is_reachable(id) {
                        ro += 1;
                        rb += self.objects.size_after(ObjId(id), &last);
                    }
                }
                (ro, rb)
            })
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        Reachability {
            allocated_objects: objects,
            allocated_bytes: bytes,
            reachable_objects: ro,
            reachable_bytes: rb,
            unreachable_objects: objects - ro,
            unreachable_bytes: bytes - rb,
        }
    }
}
