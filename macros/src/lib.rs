//! The `#[worker]` attribute of the `multiproc` crate, re-exported there as
//! `multiproc::worker`; use it through that path, not from this crate.
//!
//! A child process started by multiproc is a re-executed copy of the current
//! program. `#[worker]` registers a function (or a type's `run` method) under
//! a name — the module path plus the item's name — in a link-time registry, so
//! that the child can find the body by that name, decode its arguments, run
//! it and send the encoded result back.
//!
//! # On a free function
//!
//! ```rust,ignore
//! /// Squares a number in another process.
//! #[multiproc::worker]
//! pub fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! // `square` now builds a task instead of running the body:
//! let task: multiproc::Task<u64> = square(7);
//! ```
//!
//! The function keeps its name, visibility and docs, but returns
//! `multiproc::Task<T>` for its original return type `T` (`()` if none). Its
//! arguments (any patterns, such as `(a, b): (u32, u32)`, are allowed) must be
//! owned, serializable and deserializable, and so must `T`.
//!
//! # On an `impl` block
//!
//! The "subclass `Process` and override `run()`" style: the value itself is
//! sent to the child, which calls its `run(self)`.
//!
//! ```rust,ignore
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Clock {
//!     interval: f64,
//! }
//!
//! #[multiproc::worker]
//! impl Clock {
//!     fn run(self) -> u32 {
//!         // ...
//!         # 0
//!     }
//! }
//!
//! // The block is kept as is, and `Clock` gets `multiproc::IntoTask`:
//! let task: multiproc::Task<u32> = multiproc::IntoTask::into_task(Clock { interval: 1.0 });
//! ```
//!
//! # What is rejected
//!
//! With an error on the offending tokens: attribute arguments, generic
//! functions or `impl` blocks, `async`/`const`/`unsafe`/`extern` functions,
//! methods (put the attribute on the `impl` block instead), `impl Trait` and
//! references in argument or result types, trait impls, and `impl` blocks
//! without a `fn run(self)` taking `self` by value and nothing else.
//!

extern crate proc_macro;

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Makes a function, or the `fn run(self)` of an `impl` block, runnable in a
/// child process.
///
/// On a function `fn f(args..) -> T`, `f` becomes a constructor with the same
/// arguments returning `multiproc::Task<T>`; on `impl Type { fn run(self) -> T }`,
/// `Type` gets an implementation of `multiproc::IntoTask` with `Output = T`.
/// The rules of what it accepts, with examples, are in the documentation of
/// `multiproc::worker` (this macro, re-exported by the `multiproc` crate).
#[proc_macro_attribute]
pub fn worker(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::worker(args.into(), input.into()).into()
}
