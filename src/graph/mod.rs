//! The object graph (compact adjacency over integer ids) and its dominator tree.
