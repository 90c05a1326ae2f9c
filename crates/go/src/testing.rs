//! Test helpers: the committed sample cores (`samples/cores/<go version>/<program>/`) and the
//! ground truth their programs wrote about themselves.

use std::path::PathBuf;

use serde_json::Value;

use crate::heap::{Heap, HeapIndex, ObjId, Objects, PointerBits};
use crate::objgraph::RawEdges;
use crate::process::{OpenOptions, Process};
use crate::runtime::Runtime;
use crate::types::{HeapParts, ObjectTypes, TypeScope};

/// The directory of a committed sample, `go1.26.6/ledger`.
pub(crate) fn sample_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/cores")).join(name)
}

/// Opens a committed sample's core, with its executable found beside it.
pub(crate) fn open(name: &str) -> Process {
    let core = sample_dir(name).join("core.zst");
    Process::open(&core, &OpenOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A JSON file of a sample (`truth.json`), parsed.
pub(crate) fn json(name: &str, file: &str) -> Value {
    let path = sample_dir(name).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make samples)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the program measured about the map of this name (`main.balances`) in truth.json.
pub(crate) fn truth_map(name: &str, map: &str) -> Value {
    let truth = json(name, "truth.json");
    let maps = truth["maps"].as_array().cloned().unwrap_or_default();
    maps.into_iter()
        .find(|m| m["name"] == map)
        .unwrap_or_else(|| panic!("{name}: truth.json has no map {map}"))
}

/// A non-negative integer field of a truth record.
pub(crate) fn uint(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("truth field {field} is not a number: {v}"))
}

/// The heap of a sample as the analysis reads it, up to the objects' types.
pub(crate) struct Phases {
    /// Spans and liveness.
    pub heap: Heap,
    /// Address lookup.
    pub index: HeapIndex,
    /// Where pointer words are.
    pub bits: PointerBits,
    /// Object ids.
    pub objects: Objects,
    /// Every object's pointers to other objects.
    pub raw: RawEdges,
    /// The objects' types.
    pub types: ObjectTypes,
}

impl Phases {
    /// Runs the phases as the analysis does (spans, objects, pointer bits, stack variables,
    /// pointers, types), with every object's type inferred that can be.
    pub fn run(p: &Process) -> Phases {
        let rt = Runtime::new(p);
        let heap = Heap::read(&rt).unwrap();
        let index = HeapIndex::new(&heap, crate::heap::PAGE_SIZE);
        let objects = Objects::new(&heap, crate::heap::malloc_header_bytes(&rt));
        let bits = PointerBits::new(&rt, &heap).unwrap();
        let stack_vars = rt.frame_roots().unwrap().vars;
        let raw = RawEdges::build(&p.mem, &heap, &index, &objects, &bits, &|_| {});
        let parts = HeapParts {
            heap: &heap,
            index: &index,
            objects: &objects,
            stack_vars: &stack_vars,
            edges: crate::types::Edges::Resolved(&raw),
        };
        let types = ObjectTypes::infer(&rt, parts, TypeScope::All).unwrap();
        Phases {
            heap,
            index,
            bits,
            objects,
            raw,
            types,
        }
    }

    /// The live objects whose type has this name.
    pub fn typed(&self, name: &str) -> Vec<ObjId> {
        self.types.objects_where(|_, n| n == name)
    }
}
