//! Rejects what `#[worker]` cannot support, with an error on the offending
//! tokens that says what to write instead.
//!
//! All problems found are reported together (see [`Errors`]). Types that are
//! merely not serializable are left to the type checker, through the
//! `assert_arg` / `assert_result` calls the expansion makes.

use crate::parse::{Input, WorkerFn, WorkerImpl};
use syn::{Error, FnArg, GenericArgument, ImplItemFn, PathArguments, Result, ReturnType, Signature, Type};

impl Input<'_> {
    /// Checks everything `#[worker]` needs of the item, returning all the
    /// problems found as one (combined) error.
    pub(crate) fn validate(&self) -> Result<()> {
        let mut errors = Errors::default();
        match self {
            Input::Fn(input) => input.validate(&mut errors),
            Input::Impl(input) => input.validate(&mut errors),
        }
        errors.finish()
    }
}

impl WorkerFn<'_> {
    /// A free function: no receiver, a plain signature, sendable types.
    fn validate(&self, errors: &mut Errors) {
        if let Some(receiver) = self.receiver {
            errors.push(Error::new_spanned(
                receiver,
                "#[worker] on a method is not supported: put #[worker] on the `impl` block whose \
                 `fn run(self)` is the body, or on a free function",
            ));
        }
        check_signature(&self.original.sig, Subject::Fn, errors);
        for arg in &self.args {
            check_type(arg.ty, Position::Arg, errors);
        }
        check_output(&self.original.sig.output, errors);
    }
}

impl WorkerImpl<'_> {
    /// An inherent, non-generic `impl` of a plainly named type, with a
    /// valid `fn run`.
    fn validate(&self, errors: &mut Errors) {
        let original = self.original;
        if let Some(defaultness) = &original.defaultness {
            errors.push(Error::new_spanned(
                defaultness,
                "#[worker] does not support `default impl`: remove `default`",
            ));
        }
        if let Some((_, trait_, for_token)) = &original.trait_ {
            errors.push(Error::new_spanned(
                quote::quote!(#trait_ #for_token),
                "#[worker] goes on an inherent `impl` block (`impl Clock { fn run(self) .. }`), \
                 not on a trait impl",
            ));
        } else if let Some(unsafety) = &original.unsafety {
            errors.push(Error::new_spanned(
                unsafety,
                "an inherent `impl` block cannot be `unsafe`: remove `unsafe`",
            ));
        }
        let generic = !original.generics.params.is_empty();
        if generic {
            errors.push(Error::new_spanned(
                &original.generics,
                "a #[worker] `impl` block cannot be generic: the child finds the worker by name, \
                 so its type must be concrete",
            ));
        } else if let Some(where_clause) = &original.generics.where_clause {
            errors.push(Error::new_spanned(
                where_clause,
                "a #[worker] `impl` block cannot have a `where` clause: the child finds the \
                 worker by name, so its type must be concrete",
            ));
        }
        // `impl<T> Wrapper<T>` is reported once, as generic.
        if let (Err(error), false) = (self.ident(), generic) {
            errors.push(error);
        }
        if self.is_actor() {
            if let Some(run) = self.method("run") {
                errors.push(Error::new_spanned(
                    &run.sig.ident,
                    "a #[worker] `impl` block is either a task (`fn run(self)`) or an actor \
                     (`fn handle(&mut self, msg, cx)`), not both: rename or remove one of them",
                ));
            }
            check_actor(self, errors);
        } else {
            match self.run() {
                Ok(run) => check_run(run, errors),
                Err(error) => errors.push(error),
            }
        }
    }
}

/// Checks the methods of an actor block: `handle(&mut self, msg[, cx])`, and, if present,
/// `init(&mut self[, cx])` and `terminate(&mut self, reason[, cx])`.
fn check_actor(input: &WorkerImpl, errors: &mut Errors) {
    let hooks: [(&str, std::ops::RangeInclusive<usize>, &str); 4] = [
        (
            "handle",
            1..=2,
            "`fn handle` of an actor takes the message and, optionally, the context: \
             `fn handle(&mut self, msg: M, cx: &mut ActorContext<M>) -> Flow`",
        ),
        (
            "init",
            0..=1,
            "`fn init` of an actor takes, optionally, the context only: \
             `fn init(&mut self, cx: &mut ActorContext<M>)`",
        ),
        (
            "signal",
            1..=2,
            "`fn signal` of an actor takes the signal and, optionally, the context: \
             `fn signal(&mut self, sig: multiproc::Signal, cx: &mut ActorContext<M>) -> Flow`",
        ),
        (
            "terminate",
            1..=2,
            "`fn terminate` of an actor takes the reason and, optionally, the context: \
             `fn terminate(&mut self, reason: &StopReason, cx: &mut ActorContext<M>)`",
        ),
    ];
    for (name, arity, usage) in hooks {
        let Some(f) = input.method(name) else { continue };
        let sig = &f.sig;
        match sig.inputs.first() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() && r.colon_token.is_none() => {}
            Some(FnArg::Receiver(r)) => errors.push(Error::new_spanned(
                r,
                format!(
                    "`fn {name}` of an actor must take `&mut self`: the actor loop keeps the \
                     state and lends it to each call"
                ),
            )),
            _ => errors.push(Error::new_spanned(
                &sig.ident,
                format!(
                    "`fn {name}` of an actor must take `&mut self`: the actor loop keeps the \
                     state and lends it to each call"
                ),
            )),
        }
        if !arity.contains(&WorkerImpl::arity(f)) {
            errors.push(Error::new_spanned(&sig.ident, usage));
        }
        check_signature(sig, Subject::Hook, errors);
    }
    if let Some(msg) = input.message_type() {
        check_type(msg, Position::Message, errors);
    }
}

/// Checks the `fn run` of a `#[worker]` impl block: `self` by value, nothing else.
fn check_run(run: &ImplItemFn, errors: &mut Errors) {
    let sig = &run.sig;
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_none() && (receiver.colon_token.is_none() || is_self_type(&receiver.ty)) => {}
        Some(FnArg::Receiver(receiver)) => errors.push(Error::new_spanned(
            receiver,
            "`fn run` of a #[worker] `impl` block must take `self` by value: the child process \
             decodes the value and runs it, so write `fn run(self)` (or `fn run(mut self)`)",
        )),
        Some(FnArg::Typed(_)) | None => errors.push(Error::new_spanned(
            &sig.ident,
            "`fn run` of a #[worker] `impl` block must take `self` by value: the child process \
             decodes the value and runs it, so write `fn run(self)` (or `fn run(mut self)`)",
        )),
    }
    let extra: Vec<&FnArg> = sig.inputs.iter().filter(|arg| matches!(arg, FnArg::Typed(_))).collect();
    if let (Some(first), Some(last)) = (extra.first(), extra.last()) {
        errors.push(Error::new_spanned(
            quote::quote!(#first #last),
            "`fn run` of a #[worker] `impl` block takes no arguments besides `self`: put its \
             inputs in the fields of the type",
        ));
    }
    check_signature(sig, Subject::Run, errors);
    check_output(&sig.output, errors);
}

/// Which function a signature problem is reported for.
#[derive(Clone, Copy)]
enum Subject {
    /// A free `#[worker]` function.
    Fn,
    /// The `fn run` of a `#[worker]` impl block.
    Run,
    /// A method (`handle`, `init`, `terminate`) of a `#[worker]` actor.
    Hook,
}

impl Subject {
    /// How the function is named in messages.
    fn what(self) -> &'static str {
        match self {
            Subject::Fn => "a #[worker] function",
            Subject::Run => "`fn run` of a #[worker] `impl` block",
            Subject::Hook => "a method of a #[worker] actor",
        }
    }
}

/// Checks the parts of a signature that a worker body cannot have:
/// qualifiers, an ABI, variadics and generics.
fn check_signature(sig: &Signature, subject: Subject, errors: &mut Errors) {
    let what = subject.what();
    if let Some(constness) = &sig.constness {
        errors.push(Error::new_spanned(
            constness,
            format!("{what} cannot be `const`: it runs in a child process at run time; remove `const`"),
        ));
    }
    if let Some(asyncness) = &sig.asyncness {
        errors.push(Error::new_spanned(
            asyncness,
            format!(
                "{what} cannot be `async`: it is the body of a child process; make it a plain \
                 `fn` (and start an async runtime inside it if you need one)"
            ),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(Error::new_spanned(
            unsafety,
            format!(
                "{what} cannot be `unsafe`: the child process calls it with arguments decoded \
                 from bytes, so it must be safe to call; remove `unsafe` and use `unsafe` \
                 blocks inside"
            ),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new_spanned(
            abi,
            format!(
                "{what} cannot have an `extern` ABI: the child process calls it from Rust; \
                 remove `{}`",
                quote::quote!(#abi)
            ),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new_spanned(
            variadic,
            format!("{what} cannot be variadic: its arguments must be a fixed list of types"),
        ));
    }
    let generics = &sig.generics;
    let generic = match subject {
        Subject::Fn => {
            "a #[worker] function cannot be generic: the child finds it by name, so its argument \
             types must be concrete"
        }
        Subject::Run => {
            "`fn run` of a #[worker] `impl` block cannot be generic: the child finds it by \
             name, so its types must be concrete"
        }
        Subject::Hook => {
            "a method of a #[worker] actor cannot be generic: the actor loop calls it with \
             messages of one concrete type"
        }
    };
    if !generics.params.is_empty() {
        errors.push(Error::new_spanned(generics, generic));
    } else if let Some(where_clause) = &generics.where_clause {
        errors.push(Error::new_spanned(where_clause, generic));
    }
}

/// Where a type appears in a worker's signature.
#[derive(Clone, Copy)]
enum Position {
    /// An argument, sent from the parent to the child.
    Arg,
    /// The result, sent from the child back to the parent.
    Output,
    /// An actor's message type, sent to it by other processes.
    Message,
}

/// Checks a declared return type (see [`check_type`]).
fn check_output(output: &ReturnType, errors: &mut Errors) {
    if let ReturnType::Type(_, ty) = output {
        check_type(ty, Position::Output, errors);
    }
}

/// Rejects `impl Trait` and references anywhere in a type that crosses the
/// process boundary (inside tuples, arrays, slices and generic arguments).
fn check_type(ty: &Type, position: Position, errors: &mut Errors) {
    match ty {
        Type::ImplTrait(_) => errors.push(Error::new_spanned(
            ty,
            match position {
                Position::Arg => {
                    "`impl Trait` cannot be used in the arguments of a #[worker]: the child \
                     process decodes each argument by its type, so use a concrete type"
                }
                Position::Output => {
                    "`impl Trait` cannot be the result of a #[worker]: the parent process \
                     decodes the result by its type, so use a concrete type"
                }
                Position::Message => {
                    "`impl Trait` cannot be an actor's message type: the actor decodes each \
                     message by its type, so use a concrete type"
                }
            },
        )),
        Type::Reference(reference) => {
            let instead = match &*reference.elem {
                Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
                    "use `String` instead of `&str`"
                }
                Type::Slice(_) => "use `Vec<T>` instead of `&[T]`",
                _ => "use `String`/`Vec<T>` or the value itself instead of `&…`",
            };
            let message = match position {
                Position::Arg => {
                    format!("worker arguments are sent to another process, so they must be owned: {instead}")
                }
                Position::Output => format!(
                    "worker results are sent back to the parent process, so they must be owned: \
                     {instead}"
                ),
                Position::Message => {
                    format!("actor messages are sent from other processes, so they must be owned: {instead}")
                }
            };
            errors.push(Error::new_spanned(ty, message));
        }
        Type::Array(array) => check_type(&array.elem, position, errors),
        Type::Group(group) => check_type(&group.elem, position, errors),
        Type::Paren(paren) => check_type(&paren.elem, position, errors),
        Type::Slice(slice) => check_type(&slice.elem, position, errors),
        Type::Tuple(tuple) => {
            for elem in &tuple.elems {
                check_type(elem, position, errors);
            }
        }
        Type::Path(path) => {
            if let Some(qself) = &path.qself {
                check_type(&qself.ty, position, errors);
            }
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        if let GenericArgument::Type(ty) = arg {
                            check_type(ty, position, errors);
                        }
                    }
                }
            }
        }
        // Everything else is either not serializable (pointers, `dyn Trait`,
        // function pointers), rejected by rustc anyway (`_`), or opaque
        // (type macros): the type checker reports it.
        _ => {}
    }
}

/// Whether `ty` is exactly `Self`.
fn is_self_type(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// Collects errors so that all problems are reported in one compile.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    /// Adds an error to the report.
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// All the errors pushed, combined, if any.
    fn finish(self) -> Result<()> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
