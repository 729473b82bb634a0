//! Generates the code for a validated `#[worker]` item.
//!
//! Every path is absolute (`::multiproc::..`, `::core::..`), so the expansion
//! works whatever the user's crate imports, and needs no direct dependency on
//! serde or linkme: they are reached through `::multiproc::__private`.

use crate::parse::{is_doc, worker_name, Input, WorkerFn, WorkerImpl};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Attribute, Item, LitStr, Result};

/// Expands `#[worker]` (with attribute arguments `args`) on `input`.
///
/// On error, returns the error followed by the unchanged input, so that the
/// rest of the crate still sees the item and only the real problem is
/// reported.
pub(crate) fn worker(args: TokenStream, input: TokenStream) -> TokenStream {
    match try_expand(args, input.clone()) {
        Ok(expanded) => expanded,
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(input);
            tokens
        }
    }
}

/// Parses, validates and expands, stopping at the first stage that fails.
fn try_expand(args: TokenStream, input: TokenStream) -> Result<TokenStream> {
    let item: Item = syn::parse2(input)?;
    let input = Input::from_syn(args, &item)?;
    input.validate()?;
    match input {
        Input::Fn(input) => Ok(expand_fn(&input)),
        Input::Impl(input) => expand_impl(&input),
    }
}

/// Form 1: the body moves to a hidden function, the original name becomes a
/// constructor returning a `Task`, and a registry entry lets the child find
/// and run the body by name.
fn expand_fn(input: &WorkerFn) -> TokenStream {
    let original = input.original;
    let sig = &original.sig;
    let ident = &sig.ident;
    let vis = &original.vis;
    let fn_token = &sig.fn_token;
    let name = LitStr::new(&worker_name(ident), ident.span());
    let body_ident = format_ident!("__multiproc_body_{}", worker_name(ident), span = ident.span());
    let output = &input.output.ty;

    let cfgs: Vec<&Attribute> = original.attrs.iter().filter(|a| is_cfg(a)).collect();
    let body_attrs = original.attrs.iter().filter(|a| on_body(a));
    let ctor_attrs = original.attrs.iter().map(for_constructor);

    let body_sig = syn::Signature {
        ident: body_ident.clone(),
        ..sig.clone()
    };
    let block = &original.block;

    let names: Vec<_> = input.args.iter().map(|arg| &arg.name).collect();
    let bindings: Vec<_> = input.args.iter().map(|arg| &arg.binding).collect();
    let tys: Vec<_> = input.args.iter().map(|arg| arg.ty).collect();
    let arg_checks = input.args.iter().map(|arg| assert_arg(arg.ty, span_of(arg.ty)));
    let result_check = assert_result(output, input.output.span);
    let entry = entry(
        &name,
        &quote! {
            use ::multiproc::__private::{
                Decode as _, DecodeFallback as _, DecodePlain as _, Encode as _, EncodeFallback as _,
                EncodePlain as _,
            };
            let (#(#bindings,)*): (#(#tys,)*) =
                (&&&::multiproc::__private::Probe::<(#(#tys,)*)>::new()).decode(__args)?;
            let __value = #body_ident(#(#bindings),*);
            ::multiproc::__private::note_returned({
                #[allow(unused_imports)]
                use ::multiproc::__private::{AnyProbe as _, ErrProbe as _};
                (&::multiproc::__private::ErrCheck(&__value)).multiproc_is_err()
            });
            (&&&::multiproc::__private::Args(&__value)).encode(__out)
        },
    );

    // The checks come first: rustc reports errors in item order, so a
    // non-serializable type is first reported on the type itself, before the
    // errors it also causes in the generated calls.
    quote! {
        #(#cfgs)*
        const _: () = {
            #[allow(dead_code)]
            fn __multiproc_check() {
                use ::multiproc::__private::{DeAfterSer as _, DeAfterSerSkip as _};
                #(#arg_checks)*
                #result_check
            }
            #entry
        };

        #[doc(hidden)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        #(#body_attrs)*
        #body_sig #block

        #(#ctor_attrs)*
        #vis #fn_token #ident(#(#names: #tys),*) -> ::multiproc::Task<#output> {
            use ::multiproc::__private::{MakeTask as _, MakeTaskFallback as _, MakeTaskPlain as _};
            (&&&::multiproc::__private::Args(&(#(#names,)*)))
                .task::<#output>(::core::concat!(::core::module_path!(), "::", #name))
        }
    }
}

/// Form 2: the `impl` block stays as is; the type gets an `IntoTask` impl
/// that sends the value itself, and a registry entry that decodes it and
/// calls its `run`.
///
/// Fails only on problems that validation has already reported.
fn expand_impl(input: &WorkerImpl) -> Result<TokenStream> {
    if input.is_actor() {
        return expand_actor(input);
    }
    let original = input.original;
    let self_ty = input.self_ty;
    let ident = input.ident()?;
    let run = input.run()?;
    let name = LitStr::new(&worker_name(ident), ident.span());
    let output = input.output(run);
    let result_check = assert_result(&output.ty, output.span);
    let output = &output.ty;
    let run = &run.sig.ident;

    let cfgs: Vec<&Attribute> = original.attrs.iter().filter(|a| is_cfg(a)).collect();
    let arg_check = assert_arg(self_ty, span_of(self_ty));
    let entry = entry(
        &name,
        &quote! {
            use ::multiproc::__private::{Decode as _, DecodeFallback as _, Encode as _, EncodeFallback as _};
            let __w: #self_ty = (&&::multiproc::__private::Probe::<#self_ty>::new()).decode(__args)?;
            let __value = <#self_ty>::#run(__w);
            ::multiproc::__private::note_returned({
                #[allow(unused_imports)]
                use ::multiproc::__private::{AnyProbe as _, ErrProbe as _};
                (&::multiproc::__private::ErrCheck(&__value)).multiproc_is_err()
            });
            (&&::multiproc::__private::Args(&__value)).encode(__out)
        },
    );

    Ok(quote! {
        #(#cfgs)*
        const _: () = {
            #[allow(dead_code)]
            fn __multiproc_check() {
                use ::multiproc::__private::{DeAfterSer as _, DeAfterSerSkip as _};
                #arg_check
                #result_check
            }
            #entry
        };

        #original

        #(#cfgs)*
        impl ::multiproc::IntoTask for #self_ty {
            type Output = #output;
            fn into_task(self) -> ::multiproc::Task<#output> {
                use ::multiproc::__private::{MakeTask as _, MakeTaskFallback as _};
                (&&::multiproc::__private::Args(&self))
                    .task::<#output>(::core::concat!(::core::module_path!(), "::", #name))
            }
        }
    })
}

/// Form 3: an actor. The `impl` block stays as is; the type gets `multiproc::actor::Actor`
/// (forwarding to the block's `handle`, `init` and `terminate`), an `IntoTask` impl whose
/// task runs the actor loop on the value, and a registry entry for that loop.
///
/// Fails only on problems that validation has already reported.
fn expand_actor(input: &WorkerImpl) -> Result<TokenStream> {
    let original = input.original;
    let self_ty = input.self_ty;
    let ident = input.ident()?;
    let name = LitStr::new(&worker_name(ident), ident.span());
    let msg = input
        .message_type()
        .ok_or_else(|| syn::Error::new_spanned(self_ty, "an actor's `fn handle` needs a message argument"))?;
    let cfgs: Vec<&Attribute> = original.attrs.iter().filter(|a| is_cfg(a)).collect();
    let state_check = assert_arg(self_ty, span_of(self_ty));
    let msg_check = assert_arg(msg, span_of(msg));

    let with_cx = |f: &str, n: usize| input.method(f).map(|m| WorkerImpl::arity(m) > n);
    let handle_call = if with_cx("handle", 1) == Some(true) {
        quote!(<#self_ty>::handle(self, __msg, __cx))
    } else {
        quote!(<#self_ty>::handle(self, __msg))
    };
    let init = match with_cx("init", 0) {
        Some(true) => quote! {
            fn init(&mut self, __cx: &mut ::multiproc::actor::ActorContext<#msg>) { <#self_ty>::init(self, __cx) }
        },
        Some(false) => quote! {
            fn init(&mut self, _: &mut ::multiproc::actor::ActorContext<#msg>) { <#self_ty>::init(self) }
        },
        None => quote!(),
    };
    let terminate = match with_cx("terminate", 1) {
        Some(true) => quote! {
            fn terminate(
                &mut self,
                __reason: &::multiproc::actor::StopReason,
                __cx: &mut ::multiproc::actor::ActorContext<#msg>,
            ) {
                <#self_ty>::terminate(self, __reason, __cx)
            }
        },
        Some(false) => quote! {
            fn terminate(
                &mut self,
                __reason: &::multiproc::actor::StopReason,
                _: &mut ::multiproc::actor::ActorContext<#msg>,
            ) {
                <#self_ty>::terminate(self, __reason)
            }
        },
        None => quote!(),
    };
    let signal = match with_cx("signal", 1) {
        Some(true) => quote! {
            fn signal(
                &mut self,
                __sig: ::multiproc::Signal,
                __cx: &mut ::multiproc::actor::ActorContext<#msg>,
            ) -> ::multiproc::actor::Flow {
                ::multiproc::actor::IntoFlow::into_flow(<#self_ty>::signal(self, __sig, __cx))
            }
        },
        Some(false) => quote! {
            fn signal(
                &mut self,
                __sig: ::multiproc::Signal,
                _: &mut ::multiproc::actor::ActorContext<#msg>,
            ) -> ::multiproc::actor::Flow {
                ::multiproc::actor::IntoFlow::into_flow(<#self_ty>::signal(self, __sig))
            }
        },
        None => quote!(),
    };
    let entry = entry(
        &name,
        &quote! {
            use ::multiproc::__private::{Decode as _, DecodeFallback as _, Encode as _, EncodeFallback as _};
            let __w: #self_ty = (&&::multiproc::__private::Probe::<#self_ty>::new()).decode(__args)?;
            let __value = {
                use ::multiproc::__private::{RunActor as _, RunActorFallback as _};
                (&&::multiproc::__private::Probe::<#self_ty>::new()).run_actor(__w)?
            };
            (&&::multiproc::__private::Args(&__value)).encode(__out)
        },
    );

    Ok(quote! {
        #(#cfgs)*
        const _: () = {
            #[allow(dead_code)]
            fn __multiproc_check() {
                use ::multiproc::__private::{DeAfterSer as _, DeAfterSerSkip as _};
                #state_check
                #msg_check
            }
            #entry
        };

        #original

        #(#cfgs)*
        impl ::multiproc::actor::Actor for #self_ty {
            type Msg = #msg;
            #[allow(clippy::unit_arg)]
            fn handle(
                &mut self,
                __msg: #msg,
                __cx: &mut ::multiproc::actor::ActorContext<#msg>,
            ) -> ::multiproc::actor::Flow {
                #[allow(unused_variables)]
                let __cx = __cx;
                ::multiproc::actor::IntoFlow::into_flow(#handle_call)
            }
            #init
            #signal
            #terminate
        }

        #(#cfgs)*
        impl ::multiproc::IntoTask for #self_ty {
            type Output = #self_ty;
            fn into_task(self) -> ::multiproc::Task<#self_ty> {
                use ::multiproc::__private::{MakeTask as _, MakeTaskFallback as _};
                (&&::multiproc::__private::Args(&self))
                    .task::<#self_ty>(::core::concat!(::core::module_path!(), "::", #name))
            }
        }
    })
}

/// The registry entry: `run` decodes the arguments from `__args` and encodes
/// the body's result, as `body` does.
fn entry(name: &LitStr, body: &TokenStream) -> TokenStream {
    quote! {
        #[::multiproc::__private::linkme::distributed_slice(::multiproc::__private::WORKERS)]
        #[linkme(crate = ::multiproc::__private::linkme)]
        static __MULTIPROC_WORKER: ::multiproc::__private::WorkerEntry =
            ::multiproc::__private::WorkerEntry {
                name: ::core::concat!(::core::module_path!(), "::", #name),
                run: |__args: &[u8], __out: &mut ::std::vec::Vec<u8>| -> ::core::result::Result<
                    (),
                    ::multiproc::__private::RunError,
                > { #body },
            };
    }
}

/// A compile-time check that an argument type can be sent to the child,
/// failing on the type as written.
fn assert_arg(ty: &dyn quote::ToTokens, span: Span) -> TokenStream {
    quote_spanned! {span=>
        ::multiproc::__private::assert_arg::<#ty>();
        ::multiproc::__private::assert_arg_de(
            (&&::multiproc::__private::Probe::<#ty>::new()).de_check(),
        );
    }
}

/// A compile-time check that the result type can be sent back to the parent,
/// failing on the type as written.
fn assert_result(ty: &TokenStream, span: Span) -> TokenStream {
    quote_spanned! {span=>
        ::multiproc::__private::assert_result::<#ty>();
        ::multiproc::__private::assert_result_de(
            (&&::multiproc::__private::Probe::<#ty>::new()).de_check(),
        );
    }
}

/// Where errors about a type point.
fn span_of(ty: &syn::Type) -> Span {
    syn::spanned::Spanned::span(ty)
}

/// `#[cfg(..)]` attributes, which must apply to every generated item.
fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
}

/// Whether an attribute of the worker function is kept on the hidden body:
/// all but docs and the API-facing `#[deprecated]` / `#[must_use]` (which
/// would otherwise fire on the generated call of the body).
fn on_body(attr: &Attribute) -> bool {
    !(is_doc(attr) || attr.path().is_ident("deprecated") || attr.path().is_ident("must_use"))
}

/// An attribute of the worker function as put on the constructor: all are
/// kept, except that `#[expect(..)]` becomes `#[allow(..)]`, since the lint it
/// expects may fire in the body only.
fn for_constructor(attr: &Attribute) -> TokenStream {
    if attr.path().is_ident("expect") {
        if let syn::Meta::List(list) = &attr.meta {
            let tokens = &list.tokens;
            let allow = syn::Ident::new("allow", syn::spanned::Spanned::span(&list.path));
            return quote!(#[#allow(#tokens)]);
        }
    }
    quote!(#attr)
}

#[cfg(test)]
mod tests {
    use super::worker;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn expand(args: TokenStream, input: TokenStream) -> String {
        worker(args, input).to_string()
    }

    /// Runs the attribute on `input` and returns the compile errors it emits.
    fn errors(input: TokenStream) -> Vec<String> {
        let out = expand(TokenStream::new(), input);
        out.split("compile_error !")
            .skip(1)
            .map(|s| s.split('"').nth(1).unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn fn_expansion() {
        let out = expand(
            TokenStream::new(),
            quote! {
                /// Docs.
                #[inline]
                pub fn f((a, b): (u32, u32), mut x: u64) -> u64 { x += 1; x }
            },
        );
        for expected in [
            "fn __multiproc_body_f ((a , b) : (u32 , u32) , mut x : u64) -> u64",
            "pub fn f (__arg0 : (u32 , u32) , x : u64) -> :: multiproc :: Task < u64 >",
            "(&& & :: multiproc :: __private :: Args (& (__arg0 , x ,))) . task :: < u64 > (:: core :: concat ! (:: core :: module_path ! () , \"::\" , \"f\"))",
            "let (__arg0 , __arg1 ,) : ((u32 , u32) , u64 ,) = (&& & :: multiproc :: __private :: Probe :: < ((u32 , u32) , u64 ,) > :: new ()) . decode (__args) ?",
            "let __value = __multiproc_body_f (__arg0 , __arg1)",
            "(& :: multiproc :: __private :: ErrCheck (& __value)) . multiproc_is_err ()",
            "(&& & :: multiproc :: __private :: Args (& __value)) . encode (__out)",
            "assert_arg :: < (u32 , u32) > ()",
            "assert_arg_de ((&& :: multiproc :: __private :: Probe :: < (u32 , u32) > :: new ()) . de_check () ,)",
            "assert_result :: < u64 > ()",
            "assert_result_de ((&& :: multiproc :: __private :: Probe :: < u64 > :: new ()) . de_check () ,)",
        ] {
            assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
        }
        // Docs go on the constructor only; other attributes on both.
        assert_eq!(out.matches("Docs.").count(), 1);
        assert_eq!(out.matches("# [inline]").count(), 2);
        assert!(!out.contains("compile_error"));
    }

    #[test]
    fn unit_fn_without_args() {
        let out = expand(
            TokenStream::new(),
            quote!(
                fn g() {}
            ),
        );
        assert!(out.contains("-> :: multiproc :: Task < () >"), "{out}");
        assert!(out.contains("let () : () ="), "{out}");
        assert!(out.contains("Args (& ())) . task :: < () >"), "{out}");
    }

    #[test]
    fn impl_expansion() {
        let out = expand(
            TokenStream::new(),
            quote!(impl crate::m::Clock { fn run(self) -> Vec<Self> { vec![self] } }),
        );
        for expected in [
            "impl :: multiproc :: IntoTask for crate :: m :: Clock",
            "type Output = Vec < crate :: m :: Clock >",
            "\"::\" , \"Clock\"",
            "let __w : crate :: m :: Clock = (&& :: multiproc :: __private :: Probe :: < crate :: m :: Clock > :: new ()) . decode (__args) ?",
            "let __value = < crate :: m :: Clock > :: run (__w)",
            "note_returned",
            "(&& :: multiproc :: __private :: Args (& __value)) . encode (__out)",
            "(&& :: multiproc :: __private :: Args (& self)) . task :: < Vec < crate :: m :: Clock > >",
        ] {
            assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
        }
    }

    #[test]
    fn actor_expansion() {
        let out = expand(
            TokenStream::new(),
            quote!(impl Counter {
                fn init(&mut self) {}
                fn handle(&mut self, msg: Msg, cx: &mut ActorContext<Msg>) -> Flow { Flow::Continue }
                fn terminate(&mut self, r: &StopReason, cx: &mut ActorContext<Msg>) {}
                fn signal(&mut self, s: multiproc::Signal) {}
            }),
        );
        for expected in [
            "impl :: multiproc :: actor :: Actor for Counter",
            "type Msg = Msg",
            "< Counter > :: handle (self , __msg , __cx)",
            "< Counter > :: init (self)",
            "< Counter > :: terminate (self , __reason , __cx)",
            "IntoFlow :: into_flow (< Counter > :: signal (self , __sig))",
            "impl :: multiproc :: IntoTask for Counter",
            "type Output = Counter",
            "run_actor (__w) ?",
            "assert_arg :: < Msg > ()",
            "assert_arg :: < Counter > ()",
        ] {
            assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
        }
        assert!(!out.contains("compile_error"), "{out}");
        // Without the context and without hooks.
        let out = expand(
            TokenStream::new(),
            quote!(impl Echo { fn handle(&mut self, m: String) {} }),
        );
        assert!(out.contains("< Echo > :: handle (self , __msg)"), "{out}");
        assert!(!out.contains("fn init"), "{out}");
        // Errors: by-value self, a missing message, `run` and `handle` together.
        let errs = errors(quote!(impl W { fn run(self) {} fn handle(self) {} }));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn errors_keep_the_item_and_do_not_panic() {
        let cases = [
            quote!(
                fn f<T>(x: T) {}
            ),
            quote!(
                fn f(&self) {}
            ),
            quote!(
                async fn f() {}
            ),
            quote!(
                const unsafe extern "C" fn f(x: u8, ...) {}
            ),
            quote!(
                fn f(x: &str, y: impl Copy) -> impl Copy {
                    0
                }
            ),
            quote!(
                impl<T> W<T> {}
            ),
            quote!(impl T for W { fn run(self) {} }),
            quote!(impl W { fn run(&self, x: u8) {} }),
            quote!(impl W { fn run<T>() {} }),
            quote!(
                impl (u8, u8) {
                    fn run(self) {}
                }
            ),
            quote!(
                struct S;
            ),
            quote!(
                mod m {}
            ),
            quote!(not an item),
            quote!(),
        ];
        for case in cases {
            let out = expand(TokenStream::new(), case.clone());
            assert!(out.contains("compile_error"), "no error for `{case}`: {out}");
            assert!(out.ends_with(&case.to_string()), "item not kept: {out}");
        }
        let out = expand(
            quote!(name = "x"),
            quote!(
                fn f() {}
            ),
        );
        assert!(out.contains("#[worker] takes no arguments"), "{out}");
    }

    #[test]
    fn all_problems_are_reported() {
        // async, unsafe, generic, reference.
        let errs = errors(quote!(
            pub async unsafe fn f<'a>(x: &'a str) {}
        ));
        assert_eq!(errs.len(), 4, "{errs:?}");
        // by-reference receiver, extra argument, `impl Trait` result.
        let errs = errors(quote!(impl W { fn run(&self, x: u8) -> impl Copy {} }));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
