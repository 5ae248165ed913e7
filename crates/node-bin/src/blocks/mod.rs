//! Block sources: input files (hex or Bitcoin Core block files) and the assembly of out-of-order
//! blocks into parent-first order.

pub mod assemble;
pub mod file;

pub use assemble::{Assembler, Pushed};
pub use file::{FileBlocks, Origin};
