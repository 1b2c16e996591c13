//! Mining logic without I/O: block templates and the pure nonce search with midstate
//! hashing. The node's mining threads (in `node::miner`) call these and own the clock.
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod kernel_input;
#[cfg(any(target_arch = "x86_64", test))]
mod lanes;
pub mod search;
#[cfg(target_arch = "x86_64")]
mod sha_ni;
pub mod template;

pub use search::{NonceSearch, SearchOutcome};
pub use template::{build_template, template_on, BlockTemplate, TemplateParams};
