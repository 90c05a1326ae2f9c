//! The Go runtime's state in a core: DWARF, goroutines and their stacks, roots, heap objects,
//! their types and pointers, maps and their entries, and the object graph they make.
//!
//! Read from the bottom up: `dwarf` (types and globals of the executable) → `process` (core,
//! executable and DWARF checked to belong together) → `runtime` (version features, stacks,
//! goroutines, statistics) → `heap` (spans, objects, pointer bits) → `roots` → `types` (what
//! each object is) → `maps` (every map and its entries) → `objgraph` (the heap as a graph for
//! the dominator tree). Each Go version difference is decided once, in
//! `runtime::features::Features`.

#![deny(missing_docs)]

// The layers below, under the names the modules here use for them.
use coreheap_elf::{core, exe, input, memory, reader};
use coreheap_graph as graph;

pub mod dwarf;
pub mod heap;
pub mod maps;
pub mod objgraph;
pub mod process;
pub mod roots;
pub mod runtime;
pub mod types;

#[cfg(test)]
mod testing;
