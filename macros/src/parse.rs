//! Turns the attribute's input into the shapes that [`validate`](crate::validate)
//! checks and [`expand`](crate::expand) turns into code.
//!
//! Parsing only fails on arguments to the attribute and on an item that is
//! neither a function nor an `impl` block. Everything else that `#[worker]`
//! does not support (generics, `async`, references, an `impl` block without
//! `fn run`, ...) is reported by `validate`, all at once. The parts of an
//! `impl` block that may be missing are looked up by methods returning a
//! `Result`, which `validate` reports and `expand` relies on.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, FnArg, ImplItem, ImplItemFn, Item, ItemFn, ItemImpl, Pat, Receiver, Result, ReturnType, Type,
};

/// What `#[worker]` was put on.
pub(crate) enum Input<'a> {
    /// `#[worker] fn name(args..) -> T { body }`: the function is the worker.
    Fn(WorkerFn<'a>),
    /// `#[worker] impl Type { fn run(self) -> T { .. } }`: a value of the type
    /// is the worker's argument and its `run` method is the body.
    Impl(WorkerImpl<'a>),
}

/// A free function under `#[worker]`.
pub(crate) struct WorkerFn<'a> {
    /// The function as written (without the `#[worker]` attribute).
    pub original: &'a ItemFn,
    /// The first `self` receiver, if any: rejected by validation, since it
    /// means the attribute was put on a method.
    pub receiver: Option<&'a Receiver>,
    /// The typed arguments, in order.
    pub args: Vec<Arg<'a>>,
    /// The return type; `()` when the function declares none.
    pub output: Output,
}

/// One typed argument of a worker function.
pub(crate) struct Arg<'a> {
    /// The argument's type, as written.
    pub ty: &'a Type,
    /// The parameter name in the generated constructor: the identifier of a
    /// plain `x` / `mut x` pattern (for nicer rustdoc), otherwise `__argN`.
    pub name: Ident,
    /// The name the decoded value is bound to in the registry entry: always
    /// `__argN`, so it cannot clash with anything the user wrote.
    pub binding: Ident,
}

/// An inherent `impl` block under `#[worker]`.
pub(crate) struct WorkerImpl<'a> {
    /// The `impl` block as written (without the `#[worker]` attribute).
    pub original: &'a ItemImpl,
    /// The type the block implements, as written (`Clock`, `crate::m::Clock`).
    pub self_ty: &'a Type,
}

/// The return type of a worker's body.
pub(crate) struct Output {
    /// The type's tokens.
    pub ty: TokenStream,
    /// Where compile errors about the type point: the type as written, or the
    /// function's name when the return type is left out.
    pub span: Span,
}

impl<'a> Input<'a> {
    /// Reads the attribute's arguments and the item it is attached to.
    pub(crate) fn from_syn(args: TokenStream, item: &'a Item) -> Result<Self> {
        if !args.is_empty() {
            return Err(Error::new_spanned(args, "#[worker] takes no arguments"));
        }
        match item {
            Item::Fn(item) => Ok(Input::Fn(WorkerFn::from_syn(item))),
            Item::Impl(item) => Ok(Input::Impl(WorkerImpl::from_syn(item))),
            other => Err(Error::new_spanned(
                item_head(other),
                "#[worker] goes on a free function or on the `impl` block that defines `fn run(self)`",
            )),
        }
    }
}

impl<'a> WorkerFn<'a> {
    /// Splits the signature into receiver, arguments and return type.
    fn from_syn(original: &'a ItemFn) -> Self {
        let sig = &original.sig;
        let receiver = sig.inputs.iter().find_map(|arg| match arg {
            FnArg::Receiver(receiver) => Some(receiver),
            FnArg::Typed(_) => None,
        });
        let typed: Vec<_> = sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(typed) => Some(typed),
                FnArg::Receiver(_) => None,
            })
            .collect();

        // Names of plain-identifier arguments, so that a generated `__argN`
        // constructor parameter never collides with one of them.
        let plain: Vec<Ident> = typed.iter().filter_map(|a| plain_ident(&a.pat)).collect();
        let args = typed
            .iter()
            .enumerate()
            .map(|(i, arg)| {
                let binding = format_ident!("__arg{}", i);
                let name = plain_ident(&arg.pat).unwrap_or_else(|| {
                    let mut name = binding.clone();
                    while plain.contains(&name) {
                        name = format_ident!("{}_", name);
                    }
                    name
                });
                Arg {
                    ty: &arg.ty,
                    name,
                    binding,
                }
            })
            .collect();

        WorkerFn {
            original,
            receiver,
            args,
            output: Output::from_syn(&sig.output, &sig.ident, None),
        }
    }
}

impl<'a> WorkerImpl<'a> {
    /// Wraps the block; its parts are looked up on demand.
    fn from_syn(original: &'a ItemImpl) -> Self {
        WorkerImpl {
            original,
            self_ty: &original.self_ty,
        }
    }

    /// The last segment of the type's path, which names the worker; an error
    /// if the type is not a plain path.
    pub(crate) fn ident(&self) -> Result<&'a Ident> {
        plain_path_ident(self.self_ty).ok_or_else(|| {
            Error::new_spanned(
                self.self_ty,
                "the type of a #[worker] `impl` block must be a plain path such as `Clock` or \
                 `crate::m::Clock` (no generic arguments): the worker is named after it",
            )
        })
    }

    /// A method of the block by name.
    pub(crate) fn method(&self, name: &str) -> Option<&'a ImplItemFn> {
        self.original.items.iter().find_map(|item| match item {
            ImplItem::Fn(f) if f.sig.ident == name => Some(f),
            _ => None,
        })
    }

    /// Is the block an actor (it defines `fn handle`)?
    pub(crate) fn is_actor(&self) -> bool {
        self.method("handle").is_some()
    }

    /// The block's `fn run`; an error if there is none.
    pub(crate) fn run(&self) -> Result<&'a ImplItemFn> {
        self.method("run").ok_or_else(|| {
            let impl_token = self.original.impl_token;
            let self_ty = self.self_ty;
            Error::new_spanned(
                quote!(#impl_token #self_ty),
                "#[worker] on an `impl` block needs a `fn run(self) -> T` in that block (the body \
                 the child process runs), or a `fn handle(&mut self, msg: M, cx: &mut \
                 multiproc::actor::ActorContext<M>) -> multiproc::actor::Flow` (an actor)",
            )
        })
    }

    /// The message type of an actor: the type of `handle`'s first argument after `&mut self`.
    pub(crate) fn message_type(&self) -> Option<&'a Type> {
        let handle = self.method("handle")?;
        handle.sig.inputs.iter().find_map(|arg| match arg {
            FnArg::Typed(t) => Some(&*t.ty),
            FnArg::Receiver(_) => None,
        })
    }

    /// How many typed arguments (besides `self`) a method of the block takes.
    pub(crate) fn arity(f: &ImplItemFn) -> usize {
        f.sig.inputs.iter().filter(|a| matches!(a, FnArg::Typed(_))).count()
    }

    /// The return type of `run`, `()` when it declares none, with `Self`
    /// replaced by the implementing type so that it can be named outside the
    /// block.
    pub(crate) fn output(&self, run: &ImplItemFn) -> Output {
        Output::from_syn(&run.sig.output, &run.sig.ident, Some(self.self_ty))
    }
}

impl Output {
    /// The type a body returns, with `Self` replaced by `self_ty` if given.
    fn from_syn(output: &ReturnType, fn_ident: &Ident, self_ty: Option<&Type>) -> Self {
        match output {
            ReturnType::Default => Output {
                ty: quote!(()),
                span: fn_ident.span(),
            },
            ReturnType::Type(_, ty) => Output {
                ty: match self_ty {
                    Some(self_ty) => replace_self(ty.to_token_stream(), self_ty),
                    None => ty.to_token_stream(),
                },
                span: ty.span(),
            },
        }
    }
}

/// Whether an attribute is a `#[doc ..]` attribute (including `///` comments).
pub(crate) fn is_doc(attr: &Attribute) -> bool {
    attr.path().is_ident("doc")
}

/// The identifier of a plain `x`, `mut x` or `ref x` pattern.
fn plain_ident(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() => Some(p.ident.clone()),
        _ => None,
    }
}

/// The last segment of a plain path type such as `Clock` or `crate::m::Clock`.
fn plain_path_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let segments = &path.path.segments;
            if segments.iter().all(|s| s.arguments.is_none()) {
                segments.last().map(|s| &s.ident)
            } else {
                None
            }
        }
        Type::Group(group) => plain_path_ident(&group.elem),
        _ => None,
    }
}

/// Replaces every `Self` in `tokens` by the tokens of `self_ty`.
fn replace_self(tokens: TokenStream, self_ty: &Type) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tt| match tt {
            TokenTree::Ident(ident) if ident == "Self" => {
                let mut ty = TokenStream::new();
                self_ty.to_tokens(&mut ty);
                ty
            }
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), replace_self(group.stream(), self_ty));
                new.set_span(group.span());
                TokenTree::Group(new).into()
            }
            other => other.into(),
        })
        .collect()
}

/// The start of an item, up to its name, for errors that concern the whole
/// item without underlining all of it.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(i) => head(&i.vis, &i.struct_token, Some(&i.ident)),
        Item::Enum(i) => head(&i.vis, &i.enum_token, Some(&i.ident)),
        Item::Union(i) => head(&i.vis, &i.union_token, Some(&i.ident)),
        Item::Mod(i) => head(&i.vis, &i.mod_token, Some(&i.ident)),
        Item::Trait(i) => head(&i.vis, &i.trait_token, Some(&i.ident)),
        Item::TraitAlias(i) => head(&i.vis, &i.trait_token, Some(&i.ident)),
        Item::Const(i) => head(&i.vis, &i.const_token, Some(&i.ident)),
        Item::Static(i) => head(&i.vis, &i.static_token, Some(&i.ident)),
        Item::Type(i) => head(&i.vis, &i.type_token, Some(&i.ident)),
        Item::Use(i) => head(&i.vis, &i.use_token, None),
        Item::ExternCrate(i) => {
            let (extern_token, crate_token) = (&i.extern_token, &i.crate_token);
            head(&i.vis, &quote!(#extern_token #crate_token), Some(&i.ident))
        }
        Item::ForeignMod(i) => i.abi.to_token_stream(),
        Item::Macro(i) => i.mac.path.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// `vis keyword ident`.
fn head(vis: &syn::Visibility, keyword: &dyn ToTokens, ident: Option<&Ident>) -> TokenStream {
    quote!(#vis #keyword #ident)
}

/// The name of a worker: its identifier without any `r#` prefix.
pub(crate) fn worker_name(ident: &Ident) -> String {
    ident.unraw().to_string()
}
