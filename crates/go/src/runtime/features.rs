//! Runtime features that differ between Go releases, detected from DWARF and build info.

use serde::Serialize;

use crate::dwarf::Dwarf;
use crate::exe::BuildInfo;

/// The runtime behaviours coreheap has to tell apart; each is detected in one place here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Features {
    /// Maps are Swiss tables (`internal/runtime/maps`), not classic `hmap` buckets.
    pub swiss_maps: bool,
    /// Heap objects carry pointer bits in spans and malloc headers (1.22+), not an arena bitmap.
    pub allocation_headers: bool,
    /// Green Tea GC: small-object spans hold inline mark bits at their end.
    pub green_tea: bool,
    /// The heap's base address is randomised (1.26+), so it is not at 0xc000000000.
    pub randomized_heap_base: bool,
    /// The runtime's struct for a block of queued finalizers: `runtime.finBlock` (1.25+) or
    /// `runtime.finblock`; None when the DWARF has neither.
    #[serde(skip)]
    pub finalizer_block_type: Option<&'static str>,
    /// The struct and field of an itab's type word: `internal/abi.ITab.Type` (1.23+) or
    /// `runtime.itab._type`; None when the DWARF has neither.
    #[serde(skip)]
    pub itab_type_field: Option<(&'static str, &'static str)>,
    /// `sync.Map` is a hash trie (`internal/sync.HashTrieMap`, 1.24+), not a read-only map
    /// with a dirty one.
    #[serde(skip)]
    pub sync_map_trie: bool,
    /// `runtime.m` records the goroutine that caught a fatal signal (`caughtsig`).
    #[serde(skip)]
    pub caught_signal_goroutine: bool,
    /// Goroutines say whether they are running cleanups (`runtime.g.runningCleanups`): such a
    /// goroutine counts as a system one.
    #[serde(skip)]
    pub running_cleanups: bool,
}

impl Features {
    /// Detects features from the types and fields the executable's DWARF describes.
    pub fn detect(dwarf: &Dwarf, build: &BuildInfo) -> Features {
        // Classic maps are described by runtime.hmap; Swiss builds have maps.table instead.
        let swiss_maps =
            !dwarf.has_type("runtime.hmap") && dwarf.has_type("internal/runtime/maps.table");
        // With allocation headers, mspan gained largeType and the arena lost its bitmap. In 1.22
        // the bitmap moved into an embedded heapArenaPtrScalar, which keeps it only when the
        // noallocheaders experiment brings the 1.21 scheme back.
        let allocation_headers =
            dwarf.has_field("runtime.mspan", "largeType") && arena_bitmap_field(dwarf).is_none();
        // Without the greenteagc experiment, spanInlineMarkBits is an empty stub.
        let green_tea = dwarf.has_field("runtime.spanInlineMarkBits", "marks");
        // Randomised heap base arrived with 1.26; the runtime has no type for it, so use the
        // release, minus the experiment that turns it off and the sanitizer builds it skips.
        let sanitized = ["-race", "-msan", "-asan"]
            .iter()
            .any(|k| build.setting(k) == Some("true"));
        let randomized_heap_base = build.major_minor().is_some_and(|v| v >= (1, 26))
            && !sanitized
            && !build
                .experiments()
                .iter()
                .any(|e| e == "norandomizedheapbase64");
        // runtime.finblock was renamed finBlock in 1.25.
        let finalizer_block_type = ["runtime.finBlock", "runtime.finblock"]
            .into_iter()
            .find(|t| dwarf.has_type(t));
        // The itab moved from the runtime to internal/abi in 1.23.
        let itab_type_field = [("internal/abi.ITab", "Type"), ("runtime.itab", "_type")]
            .into_iter()
            .find(|(t, f)| dwarf.has_field(t, f));
        // sync.Map became a wrapper of a hash trie in 1.24 and lost its read field.
        let sync_map_trie = dwarf.has_type("sync.Map") && !dwarf.has_field("sync.Map", "read");
        let caught_signal_goroutine = dwarf.has_field("runtime.m", "caughtsig");
        // Where cleanups run on goroutines of their own, the goroutine says so.
        let running_cleanups = dwarf.has_field("runtime.g", "runningCleanups");
        Features {
            swiss_maps,
            allocation_headers,
            green_tea,
            randomized_heap_base,
            finalizer_block_type,
            itab_type_field,
            sync_map_trie,
            caught_signal_goroutine,
            running_cleanups,
        }
    }
}

impl Features {
    /// The runtime's own name for the map header struct of this release.
    pub fn map_header_type(&self) -> &'static str {
        if self.swiss_maps {
            "internal/runtime/maps.Map"
        } else {
            "runtime.hmap"
        }
    }

    /// The map header's field that points at its storage: `dirPtr` (Swiss) or `buckets`.
    pub fn map_storage_field(&self) -> &'static str {
        if self.swiss_maps {
            super::maplayout::SWISS_STORAGE
        } else {
            super::maplayout::CLASSIC_STORAGE
        }
    }
}

/// The `heapArena` field path of the 1.21-style pointer bitmap, when this runtime has one.
pub fn arena_bitmap_field(dwarf: &Dwarf) -> Option<&'static str> {
    ["bitmap", "heapArenaPtrScalar.bitmap"]
        .into_iter()
        .find(|f| dwarf.has_field("runtime.heapArena", f))
}

/// The `heapStatsDelta` field counting the arenas' pointer/scalar bitmaps, which
/// `ReadMemStats` adds to `Sys` and `GCSys`, when this runtime has one (Go 1.21–1.24; 1.25
/// dropped it).
pub fn heap_stats_ptr_scalar_field(dwarf: &Dwarf) -> Option<&'static str> {
    Some("inPtrScalarBits").filter(|f| dwarf.has_field("runtime.heapStatsDelta", f))
}
