//! coreheap: what is holding the memory in a Go core dump.
//!
//! The pipeline's layers are crates: `coreheap-elf` (files, the ELF core and executable, the
//! address space), `coreheap-go` (the Go runtime's state: DWARF, stacks, heap, roots, types,
//! maps, the object graph) and `coreheap-graph` (dominators over plain ids). This crate drives
//! them (`analysis`) and turns the result into what commands print (`report`); the binary
//! adds the command line and the process allocator. The library never prints.

#![deny(missing_docs)]

// The layers below, under the names the modules here use for them.
use coreheap_elf::{core, exe, memory};
use coreheap_go::{dwarf, heap, maps, objgraph, process, roots, runtime, types};
use coreheap_graph as graph;

pub mod analysis;
pub mod report;
