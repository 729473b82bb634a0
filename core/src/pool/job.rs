//! Where results go: the per-call state shared by the pool's manager thread (which delivers
//! outcomes) and the caller's handle ([`AsyncResult`], [`MapResult`], [`IMap`]).

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::error::PoolError;
use super::Shared;

/// The raw outcome of one task, as delivered by the manager: encoded result bytes or an error.
pub(crate) type Raw<'a> = Result<&'a [u8], PoolError>;

/// A receiver of task outcomes. `seq` numbers the chunks of one call, `start` is the index of
/// the chunk's first item.
pub(crate) trait Sink: Send + Sync {
    fn deliver(&self, seq: usize, start: usize, outcomes: &mut dyn ExactSizeIterator<Item = Raw<'_>>);
}

/// How often a blocked caller looks for Ctrl-C (interrupt mode).
const SLICE: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn decode<R: DeserializeOwned>(raw: Raw<'_>) -> Result<R, PoolError> {
    raw.and_then(|b| rmp_serde::from_slice(b).map_err(|e| PoolError::Decode(e.to_string())))
}

type OnResult<R> = Box<dyn FnMut(&R) + Send>;
type OnError = Box<dyn FnMut(&PoolError) + Send>;

/// Closures run in the parent (on the pool's manager thread) as results arrive (Python's
/// `callback` and `error_callback`). For [`Pool::apply_async_with`](super::Pool::apply_async_with)
/// and [`Pool::map_async_each`](super::Pool::map_async_each) they run for each task; for
/// [`Pool::map_async_with`](super::Pool::map_async_with) and
/// [`Pool::starmap_async_with`](super::Pool::starmap_async_with) (a `Callbacks<Vec<R>>`), once
/// with the whole list, as in Python. Keep them short: the pool delivers nothing else while one
/// runs. A panic in a callback is caught and ignored.
///
/// # Example
/// ```
/// use multiproc::pool::{Callbacks, Pool};
/// use std::sync::{Arc, Mutex};
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let cbs = Callbacks::new().on_result(move |v: &u64| s.lock().unwrap().push(*v));
/// let r = pool.map_async_each(square, 1..=3, None, cbs)?;
/// assert_eq!(r.get()?, [1, 4, 9]);
/// let mut seen = seen.lock().unwrap().clone();
/// seen.sort();
/// assert_eq!(seen, [1, 4, 9]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Callbacks<R> {
    on_result: Option<OnResult<R>>,
    on_error: Option<OnError>,
}

impl<R> Default for Callbacks<R> {
    fn default() -> Self {
        Callbacks {
            on_result: None,
            on_error: None,
        }
    }
}

impl<R> std::fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_result", &self.on_result.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

impl<R> Callbacks<R> {
    /// No callbacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no callback is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.on_result.is_none() && self.on_error.is_none()
    }

    /// Runs `f` for each successful task's result (Python's `callback`).
    pub fn on_result(mut self, f: impl FnMut(&R) + Send + 'static) -> Self {
        self.on_result = Some(Box::new(f));
        self
    }

    /// Runs `f` for each failed task's error (Python's `error_callback`).
    pub fn on_error(mut self, f: impl FnMut(&PoolError) + Send + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    fn run(&mut self, r: &Result<R, PoolError>) {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| match r {
            Ok(v) => {
                if let Some(f) = &mut self.on_result {
                    f(v)
                }
            }
            Err(e) => {
                if let Some(f) = &mut self.on_error {
                    f(e)
                }
            }
        }));
    }
}

impl<R> Callbacks<Vec<R>> {
    /// Runs the whole-list callbacks on finished slots and gives the slots back: `on_result`
    /// with every value if all succeeded, else `on_error` with the first error in input order.
    fn run_whole(&mut self, mut slots: Slots<R>) -> Slots<R> {
        let values = match slots.take_values() {
            Ok(v) => v,
            Err(e) => {
                if let Some(f) = &mut self.on_error {
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| f(&e)));
                }
                return slots;
            }
        };
        if let Some(f) = &mut self.on_result {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| f(&values)));
        }
        Slots::from_values(values)
    }
}

/// The outcomes of a call with a known number of tasks, by input position: the values in one
/// vector of the values' own size (a `Pool::map` over `u64` keeps 8 bytes per task, and its
/// result is that same vector, neither copied nor allocated again), a bit per position saying
/// whether it holds a value, and the errors, rarer, apart. A position in neither has no
/// outcome yet (or never got one: the pool was terminated).
///
/// Invariant: `values[i]` is initialised exactly when bit `i` of `filled` is set, for every
/// `i < values.len()`; `count` is the number of set bits.
struct Slots<R> {
    values: Vec<MaybeUninit<R>>,
    filled: Vec<u64>,
    count: usize,
    errors: BTreeMap<usize, PoolError>,
}

impl<R> Slots<R> {
    fn new(n: usize) -> Self {
        let mut values = Vec::with_capacity(n);
        // SAFETY: the capacity is `n`, and `MaybeUninit` needs no initialisation; no bit of
        // `filled` is set, so no position is read before it is written.
        unsafe { values.set_len(n) };
        Slots {
            values,
            filled: vec![0; n.div_ceil(64)],
            count: 0,
            errors: BTreeMap::new(),
        }
    }

    fn from_values(values: Vec<R>) -> Self {
        let n = values.len();
        let mut values = std::mem::ManuallyDrop::new(values);
        // SAFETY: `MaybeUninit<R>` has the layout of `R`; the pointer, length and capacity come
        // from a `Vec<R>` that is not used or dropped again (ManuallyDrop).
        let values = unsafe { Vec::from_raw_parts(values.as_mut_ptr().cast::<MaybeUninit<R>>(), n, values.capacity()) };
        let mut filled = vec![!0u64; n.div_ceil(64)];
        if n % 64 != 0 {
            if let Some(last) = filled.last_mut() {
                *last = (1u64 << (n % 64)) - 1;
            }
        }
        Slots {
            values,
            filled,
            count: n,
            errors: BTreeMap::new(),
        }
    }

    fn is_filled(&self, i: usize) -> bool {
        self.filled.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Drops the value at `i`, if there is one.
    fn clear(&mut self, i: usize) {
        if self.is_filled(i) {
            self.filled[i / 64] &= !(1 << (i % 64));
            self.count -= 1;
            // SAFETY: the bit was set, so the value is initialised; the bit is now clear, so it
            // is never read or dropped again.
            unsafe { self.values[i].assume_init_drop() };
        }
    }

    fn set(&mut self, i: usize, r: Result<R, PoolError>) {
        if i >= self.values.len() {
            return;
        }
        self.clear(i);
        match r {
            Ok(v) => {
                self.values[i].write(v);
                self.filled[i / 64] |= 1 << (i % 64);
                self.count += 1;
                if !self.errors.is_empty() {
                    self.errors.remove(&i);
                }
            }
            Err(e) => {
                self.errors.insert(i, e);
            }
        }
    }

    fn all_ok(&self) -> bool {
        self.errors.is_empty() && self.count == self.values.len()
    }

    /// The first position with neither a value nor an error.
    fn first_missing(&self) -> Option<usize> {
        let n = self.values.len();
        let mut from = 0;
        loop {
            let word = from / 64;
            let w = *self.filled.get(word)?;
            // The first clear bit at or after `from` in this word.
            let free = !w & (!0u64 << (from % 64));
            if free == 0 {
                from = (word + 1) * 64;
                continue;
            }
            let i = word * 64 + free.trailing_zeros() as usize;
            if i >= n {
                return None;
            }
            if !self.errors.contains_key(&i) {
                return Some(i);
            }
            from = i + 1;
        }
    }

    /// The first failure in input order: an error, or a position without an outcome
    /// (`Terminated`).
    fn first_failure(&self) -> Option<PoolError> {
        if self.all_ok() {
            return None;
        }
        let first_missing = self.first_missing();
        let first_error = self.errors.iter().next();
        match (first_missing, first_error) {
            (Some(m), Some((&i, e))) if i < m => Some(e.clone()),
            (Some(_), _) => Some(PoolError::Terminated),
            (None, Some((_, e))) => Some(e.clone()),
            (None, None) => None,
        }
    }

    /// Every value in input order (the slots are left empty), or the first failure (the
    /// slots are left as they are).
    fn take_values(&mut self) -> Result<Vec<R>, PoolError> {
        if let Some(e) = self.first_failure() {
            return Err(e);
        }
        // No failure: every position holds a value.
        debug_assert_eq!(self.count, self.values.len());
        let values = std::mem::take(&mut self.values);
        self.filled.clear();
        self.count = 0;
        let mut values = std::mem::ManuallyDrop::new(values);
        // SAFETY: every position is initialised (`count` equals the length), and `R` has the
        // layout of `MaybeUninit<R>`; the vector's parts are not used again (ManuallyDrop),
        // and `self` now holds an empty vector, so it reads and drops nothing.
        Ok(unsafe { Vec::from_raw_parts(values.as_mut_ptr().cast::<R>(), values.len(), values.capacity()) })
    }

    /// Each outcome in input order.
    fn into_results(mut self) -> Vec<Result<R, PoolError>> {
        let mut errors = std::mem::take(&mut self.errors);
        let values = std::mem::take(&mut self.values);
        let filled = std::mem::take(&mut self.filled);
        self.count = 0;
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if filled[i / 64] & (1 << (i % 64)) != 0 {
                    // SAFETY: the bit is set, so the value is initialised; `v` is moved out
                    // of the vector, which `MaybeUninit` never drops, so it is read once.
                    Ok(unsafe { v.assume_init() })
                } else {
                    Err(errors.remove(&i).unwrap_or(PoolError::Terminated))
                }
            })
            .collect()
    }
}

impl<R> Drop for Slots<R> {
    fn drop(&mut self) {
        if self.count == 0 {
            return;
        }
        for i in 0..self.values.len() {
            if self.is_filled(i) {
                // SAFETY: the bit is set, so the value is initialised; it is dropped once, here.
                unsafe { self.values[i].assume_init_drop() };
            }
        }
    }
}

impl<R> Default for Slots<R> {
    fn default() -> Self {
        Slots {
            values: Vec::new(),
            filled: Vec::new(),
            count: 0,
            errors: BTreeMap::new(),
        }
    }
}

// ----- fixed-size calls (apply_async, map_async) ---------------------------------------------

struct FixedSt<R> {
    slots: Slots<R>,
    remaining: usize,
    taken: bool,
    /// The task awaiting the handle as a `Future` (feature `tokio`), woken when done.
    waker: Option<std::task::Waker>,
}

/// The state of a call with a known number of tasks.
pub(crate) struct Fixed<R> {
    /// The number of tasks.
    total: usize,
    st: Mutex<FixedSt<R>>,
    cv: Condvar,
    cbs: Mutex<Callbacks<R>>,
    /// Callbacks run once, on the whole list, when the last task is done (Python's
    /// `map_async(callback=, error_callback=)`).
    whole: Mutex<Option<Callbacks<Vec<R>>>>,
    /// The call failed while its chunks were being submitted: outcomes are dropped (set with
    /// `cbs` locked, so that no callback runs after `abandon` returns).
    abandoned: AtomicBool,
}

impl<R: DeserializeOwned + Send + 'static> Sink for Fixed<R> {
    fn deliver(&self, _seq: usize, start: usize, outcomes: &mut dyn ExactSizeIterator<Item = Raw<'_>>) {
        let n = outcomes.len();
        let mut cbs = lock(&self.cbs);
        if self.abandoned.load(Ordering::Relaxed) {
            return;
        }
        let mut st = lock(&self.st);
        if cbs.on_result.is_none() && cbs.on_error.is_none() {
            drop(cbs);
            for (i, r) in (start..).zip(outcomes) {
                st.slots.set(i, decode(r));
            }
        } else {
            // Callbacks run without the result lock held, so they may inspect other handles.
            drop(st);
            let decoded: Vec<Result<R, PoolError>> = outcomes.map(decode).collect();
            for r in &decoded {
                cbs.run(r);
            }
            drop(cbs);
            st = lock(&self.st);
            for (i, r) in (start..).zip(decoded) {
                st.slots.set(i, r);
            }
        }
        let left = st.remaining.saturating_sub(n);
        if left == 0 {
            if let Some(mut whole) = lock(&self.whole).take() {
                // Before the results are ready to `get`, as in Python; without the result lock
                // held, and with `remaining` not yet zero, so no waiter takes the slots meanwhile.
                let slots = std::mem::take(&mut st.slots);
                drop(st);
                let slots = whole.run_whole(slots);
                st = lock(&self.st);
                st.slots = slots;
            }
        }
        st.remaining = left;
        if st.remaining == 0 {
            self.cv.notify_all();
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        }
    }
}

impl<R> Fixed<R> {
    pub(crate) fn new(n: usize, cbs: Callbacks<R>, whole: Option<Callbacks<Vec<R>>>) -> Arc<Self> {
        Arc::new(Fixed {
            total: n,
            st: Mutex::new(FixedSt {
                slots: Slots::new(n),
                remaining: n,
                taken: false,
                waker: None,
            }),
            cv: Condvar::new(),
            cbs: Mutex::new(cbs),
            whole: Mutex::new(whole),
            abandoned: AtomicBool::new(false),
        })
    }

    /// Drops every outcome from now on, and the callbacks with them: the call failed before
    /// all its chunks were submitted, and its caller got the error instead of a handle.
    pub(crate) fn abandon(&self) {
        let mut cbs = lock(&self.cbs);
        self.abandoned.store(true, Ordering::Relaxed);
        *cbs = Callbacks::new();
        drop(cbs);
        lock(&self.whole).take();
    }

    /// Waits until every task has an outcome or `deadline` passes; returns whether it is done.
    /// On Ctrl-C (interrupt mode) terminates the pool and returns `Interrupted`.
    fn wait_until(&self, shared: &Shared, deadline: Option<Instant>) -> Result<bool, PoolError> {
        let watch = crate::InterruptWatch::new();
        let mut st = lock(&self.st);
        loop {
            if st.remaining == 0 {
                return Ok(true);
            }
            if watch.fired() {
                drop(st);
                shared.request_terminate();
                return Err(PoolError::Interrupted);
            }
            let mut slice = SLICE;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                slice = slice.min(left);
            }
            st = self.cv.wait_timeout(st, slice).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn ready(&self) -> bool {
        lock(&self.st).remaining == 0
    }

    fn successful(&self) -> Result<bool, PoolError> {
        let st = lock(&self.st);
        if st.remaining > 0 {
            return Err(PoolError::NotReady);
        }
        if st.taken {
            return Err(PoolError::ResultTaken);
        }
        Ok(st.slots.all_ok())
    }

    fn take_slots(&self) -> Result<Slots<R>, PoolError> {
        let mut st = lock(&self.st);
        if st.taken {
            return Err(PoolError::ResultTaken);
        }
        st.taken = true;
        Ok(std::mem::take(&mut st.slots))
    }

    /// Each outcome, in input order.
    fn take(&self) -> Result<Vec<Result<R, PoolError>>, PoolError> {
        Ok(self.take_slots()?.into_results())
    }

    /// Every value in input order, or the first failure in input order (the slots are taken
    /// either way, as `get` takes them).
    fn take_values(&self) -> Result<Vec<R>, PoolError> {
        self.take_slots()?.take_values()
    }
}

fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(86400 * 365))
}

/// The pending result of [`Pool::apply_async`](super::Pool::apply_async) (Python's
/// `AsyncResult`).
///
/// # Example
/// ```
/// use multiproc::pool::Pool;
/// use std::time::Duration;
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(1)?;
/// let r = pool.apply_async(square(7))?;
/// assert!(r.wait_timeout(Duration::from_secs(30)));
/// assert!(r.ready());
/// assert_eq!(r.successful(), Ok(true));
/// assert_eq!(r.get()?, 49);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the result of an async call is lost unless you get() it"]
pub struct AsyncResult<R> {
    pub(crate) inner: Arc<Fixed<R>>,
    pub(crate) shared: Arc<Shared>,
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.inner.ready())
            .finish()
    }
}

impl<R> AsyncResult<R> {
    /// Waits for the result and returns it (or the task's error). A second `get` after a
    /// successful one is [`PoolError::ResultTaken`]. In interrupt mode, Ctrl-C returns
    /// [`PoolError::Interrupted`] and terminates the pool.
    pub fn get(&self) -> Result<R, PoolError> {
        self.inner.wait_until(&self.shared, None)?;
        self.take_one()
    }

    /// Like [`get`](Self::get), but gives up with [`PoolError::Timeout`] after `timeout` (the
    /// task keeps running, and `get` may be called again). A zero timeout does not wait.
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, PoolError> {
        if !self.inner.wait_until(&self.shared, Some(deadline_after(timeout)))? {
            return Err(PoolError::Timeout);
        }
        self.take_one()
    }

    fn take_one(&self) -> Result<R, PoolError> {
        self.inner.take()?.pop().unwrap_or(Err(PoolError::Terminated))
    }

    /// Waits until the result is ready.
    pub fn wait(&self) {
        let _ = self.inner.wait_until(&self.shared, None);
    }

    /// Waits at most `timeout`; returns whether the result is ready.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.inner
            .wait_until(&self.shared, Some(deadline_after(timeout)))
            .unwrap_or(false)
    }

    /// Is the result ready (the task finished, failed, or was cancelled)?
    pub fn ready(&self) -> bool {
        self.inner.ready()
    }

    /// Did the task succeed? [`PoolError::NotReady`] before the result is ready (as Python's
    /// `ValueError`).
    pub fn successful(&self) -> Result<bool, PoolError> {
        self.inner.successful()
    }
}

/// The pending results of [`Pool::map_async`](super::Pool::map_async) and
/// [`Pool::starmap_async`](super::Pool::starmap_async), in input order.
///
/// # Example
/// ```
/// use multiproc::pool::Pool;
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// let r = pool.map_async(square, 0..5)?;
/// r.wait();
/// assert_eq!(r.successful(), Ok(true));
/// assert_eq!(r.get()?, [0, 1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the results of an async call are lost unless you get() them"]
pub struct MapResult<R> {
    pub(crate) inner: Arc<Fixed<R>>,
    pub(crate) shared: Arc<Shared>,
}

impl<R> std::fmt::Debug for MapResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapResult").field("ready", &self.inner.ready()).finish()
    }
}

impl<R> MapResult<R> {
    /// Waits for every task and returns the results in input order. If some tasks failed, it
    /// still waits for all of them, then returns the first error in input order (as CPython
    /// does since bpo-23992); [`get_results`](Self::get_results) gives every outcome.
    pub fn get(&self) -> Result<Vec<R>, PoolError> {
        self.inner.wait_until(&self.shared, None)?;
        self.inner.take_values()
    }

    /// Like [`get`](Self::get), with a timeout ([`PoolError::Timeout`]; call again later).
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<R>, PoolError> {
        if !self.inner.wait_until(&self.shared, Some(deadline_after(timeout)))? {
            return Err(PoolError::Timeout);
        }
        self.inner.take_values()
    }

    /// Waits for every task and returns each one's result or error, in input order.
    pub fn get_results(&self) -> Result<Vec<Result<R, PoolError>>, PoolError> {
        self.inner.wait_until(&self.shared, None)?;
        self.inner.take()
    }

    /// Like [`get_results`](Self::get_results), with a timeout.
    pub fn get_results_timeout(&self, timeout: Duration) -> Result<Vec<Result<R, PoolError>>, PoolError> {
        if !self.inner.wait_until(&self.shared, Some(deadline_after(timeout)))? {
            return Err(PoolError::Timeout);
        }
        self.inner.take()
    }

    /// Waits until every task has finished.
    pub fn wait(&self) {
        let _ = self.inner.wait_until(&self.shared, None);
    }

    /// Waits at most `timeout`; returns whether every task has finished.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.inner
            .wait_until(&self.shared, Some(deadline_after(timeout)))
            .unwrap_or(false)
    }

    /// Have all tasks finished?
    pub fn ready(&self) -> bool {
        self.inner.ready()
    }

    /// Did every task succeed? [`PoolError::NotReady`] before all are done.
    pub fn successful(&self) -> Result<bool, PoolError> {
        self.inner.successful()
    }

    /// The number of tasks in the call.
    ///
    /// ```
    /// use multiproc::pool::Pool;
    ///
    /// #[multiproc::worker]
    /// fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    ///
    /// let pool = Pool::new(2)?;
    /// let r = pool.map_async(double, 0..10)?;
    /// assert_eq!(r.len(), 10);
    /// r.wait();
    /// assert_eq!(r.completed(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.total
    }

    /// Is the call empty (no tasks)?
    pub fn is_empty(&self) -> bool {
        self.inner.total == 0
    }

    /// How many tasks have finished so far (returned or failed), for a progress display.
    pub fn completed(&self) -> usize {
        let st = lock(&self.inner.st);
        self.inner.total - st.remaining.min(self.inner.total)
    }
}

// ----- streaming calls (imap, imap_unordered) -------------------------------------------------

struct StreamSt<R> {
    /// Ordered mode: finished chunks by sequence number.
    by_seq: BTreeMap<usize, VecDeque<Result<R, PoolError>>>,
    /// Unordered mode: finished items in arrival order.
    arrived: VecDeque<Result<R, PoolError>>,
    /// The task polling the IMap as a `Stream` (feature `tokio`), woken on each delivery.
    waker: Option<std::task::Waker>,
}

/// The state of an imap call.
pub(crate) struct Stream<R> {
    ordered: bool,
    st: Mutex<StreamSt<R>>,
    cv: Condvar,
}

impl<R: DeserializeOwned + Send + 'static> Sink for Stream<R> {
    fn deliver(&self, seq: usize, _start: usize, outcomes: &mut dyn ExactSizeIterator<Item = Raw<'_>>) {
        let decoded: VecDeque<Result<R, PoolError>> = outcomes.map(decode).collect();
        let mut st = lock(&self.st);
        if self.ordered {
            st.by_seq.insert(seq, decoded);
        } else {
            st.arrived.extend(decoded);
        }
        self.cv.notify_all();
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

/// The source of an imap: tasks built lazily from the input.
pub(crate) type Source<R> = Box<dyn Iterator<Item = crate::Task<R>>>;

/// A lazy iterator over the results of [`Pool::imap`](super::Pool::imap) (in input order) or
/// [`Pool::imap_unordered`](super::Pool::imap_unordered) (as they complete).
///
/// It streams: the input is read only a few chunks ahead of what has been consumed, so an
/// input of millions of items is never held in memory at once. Each item is the task's result
/// or its error; a task argument that cannot be serialised is reported as
/// [`PoolError::Encode`] in its place.
///
/// # Example
/// ```
/// use multiproc::pool::Pool;
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// let squares: Vec<u64> = pool.imap(square, 0..1_000)?.map(|r| r.unwrap()).take(5).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct IMap<R> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) inner: Arc<Stream<R>>,
    pub(crate) src: Source<R>,
    pub(crate) chunksize: usize,
    pub(crate) window: usize,
    pub(crate) exhausted: bool,
    /// Chunks submitted so far (the next sequence number).
    pub(crate) submitted: usize,
    /// Items submitted so far.
    pub(crate) items: usize,
    /// Ordered: the next chunk to yield from. Unordered: chunks fully consumed (approximate).
    pub(crate) next_seq: usize,
    /// Items yielded so far.
    pub(crate) yielded: usize,
    /// The input's length, when its iterator knew it exactly (`size_hint` lower == upper).
    pub(crate) total: Option<usize>,
    pub(crate) _r: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for IMap<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMap")
            .field("ordered", &self.inner.ordered)
            .field("chunksize", &self.chunksize)
            .field("submitted", &self.items)
            .field("yielded", &self.yielded)
            .finish()
    }
}

impl<R> IMap<R> {
    /// The number of tasks in the call, when the input said how many items it has (a `Vec`,
    /// a slice, a range, ...: its `size_hint` was exact); `None` for an input of unknown
    /// length.
    pub fn total(&self) -> Option<usize> {
        self.total
    }

    /// How many results have been yielded so far.
    pub fn yielded(&self) -> usize {
        self.yielded
    }

    /// How many tasks have finished so far: yielded, or arrived and waiting to be yielded.
    pub fn completed(&self) -> usize {
        let st = lock(&self.inner.st);
        self.yielded + st.arrived.len() + st.by_seq.values().map(VecDeque::len).sum::<usize>()
    }
}

impl<R: DeserializeOwned + Send + 'static> IMap<R> {
    pub(crate) fn new_stream(ordered: bool) -> Arc<Stream<R>> {
        Arc::new(Stream {
            ordered,
            st: Mutex::new(StreamSt {
                by_seq: BTreeMap::new(),
                arrived: VecDeque::new(),
                waker: None,
            }),
            cv: Condvar::new(),
        })
    }

    /// Submits the first chunks.
    pub(crate) fn start(&mut self) {
        self.top_up();
    }

    /// Submits chunks until `window` chunks' worth of items are outstanding or the input ends.
    fn top_up(&mut self) {
        while !self.exhausted && self.items - self.yielded < self.window * self.chunksize {
            let mut parts = Vec::with_capacity(self.chunksize);
            while parts.len() < self.chunksize {
                match self.src.next() {
                    Some(t) => parts.push(t),
                    None => {
                        self.exhausted = true;
                        break;
                    }
                }
            }
            if parts.is_empty() {
                break;
            }
            let mut start = self.items;
            self.items += parts.len();
            let mut chunks = Vec::new();
            for seg in super::segments(parts, self.chunksize) {
                let seq = self.submitted;
                self.submitted += 1;
                match seg {
                    super::Segment::Run { count, body, fds } => {
                        chunks.push(super::Chunk {
                            sink: self.inner.clone(),
                            seq,
                            start,
                            count,
                            body,
                            fds,
                            deadline: None,
                        });
                        start += count;
                    }
                    super::Segment::Fail { err } => {
                        sink_fail(&*self.inner, seq, start, 1, err);
                        start += 1;
                    }
                }
            }
            if let Err((e, refused)) = self.shared.submit(chunks) {
                // The pool is closed or gone: each refused item fails in its place.
                for c in refused {
                    c.fail(&e);
                }
            }
        }
    }

    /// The next result, waiting at most `timeout` for it: `None` when every result has been
    /// yielded, `Some(Err(PoolError::Timeout))` if none arrived in time (the iterator stays
    /// usable). Python's `next(timeout)`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, PoolError>> {
        self.next_until(Some(deadline_after(timeout)))
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R, PoolError>> {
        self.top_up();
        if self.exhausted && self.yielded == self.items {
            return None;
        }
        let watch = crate::InterruptWatch::new();
        let inner = self.inner.clone();
        let mut st = lock(&inner.st);
        loop {
            if inner.ordered {
                if let Some(q) = st.by_seq.get_mut(&self.next_seq) {
                    if let Some(item) = q.pop_front() {
                        if q.is_empty() {
                            st.by_seq.remove(&self.next_seq);
                            self.next_seq += 1;
                        }
                        self.yielded += 1;
                        drop(st);
                        self.top_up();
                        return Some(item);
                    }
                    st.by_seq.remove(&self.next_seq);
                    self.next_seq += 1;
                    continue;
                }
            } else if let Some(item) = st.arrived.pop_front() {
                self.yielded += 1;
                drop(st);
                self.top_up();
                return Some(item);
            }
            if watch.fired() {
                drop(st);
                self.shared.request_terminate();
                return Some(Err(PoolError::Interrupted));
            }
            let mut slice = SLICE;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Some(Err(PoolError::Timeout));
                }
                slice = slice.min(left);
            }
            st = inner.cv.wait_timeout(st, slice).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

fn sink_fail(sink: &dyn Sink, seq: usize, start: usize, n: usize, e: PoolError) {
    sink.deliver(seq, start, &mut (0..n).map(|_| Err(e.clone())));
}

impl<R: DeserializeOwned + Send + 'static> Iterator for IMap<R> {
    type Item = Result<R, PoolError>;

    /// The next result, waiting as long as it takes. In interrupt mode, Ctrl-C yields
    /// [`PoolError::Interrupted`] and terminates the pool.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None)
    }

    /// Exact when the input's length was known ([`IMap::total`]); otherwise a lower bound
    /// (the items read from the input and not yet yielded) and no upper bound.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.total {
            Some(t) => {
                let left = t.saturating_sub(self.yielded);
                (left, Some(left))
            }
            None => (self.items.saturating_sub(self.yielded), None),
        }
    }
}

/// Results left to yield, so that progress bars (`indicatif`'s `.progress()`) know the length.
/// Exact when the input's length was known ([`IMap::total`]: a `Vec`, a slice, a range, ...).
/// For an input of unknown length `len()` counts only the items read from it and not yet
/// yielded: wrap such an input with a known count (`.progress_count(n)`) instead.
impl<R: DeserializeOwned + Send + 'static> ExactSizeIterator for IMap<R> {
    fn len(&self) -> usize {
        self.size_hint().0
    }
}

// ----- the `.await` forms (feature `tokio`) ----------------------------------------------------

#[cfg(feature = "tokio")]
impl<R> Fixed<R> {
    /// Done? If not, `cx`'s task is woken when it is (the check and the registration are one
    /// step under the result lock, so no delivery falls in between).
    fn poll_done(&self, cx: &mut std::task::Context<'_>) -> bool {
        let mut st = lock(&self.st);
        if st.remaining == 0 {
            return true;
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        false
    }
}

/// `r.await` waits for the result without blocking the runtime thread (the pool's manager
/// thread wakes the task); the output is [`AsyncResult::get`]'s. Dropping the future only stops
/// waiting. Ctrl-C in interrupt mode is not watched here (the blocking `get` does that).
///
/// # Example
/// ```no_run
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = multiproc::pool::Pool::new(2)?;
/// assert_eq!(pool.apply_async(square(7))?.await?, 49);
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
impl<R> std::future::Future for AsyncResult<R> {
    type Output = Result<R, PoolError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        if self.inner.poll_done(cx) {
            std::task::Poll::Ready(self.take_one())
        } else {
            std::task::Poll::Pending
        }
    }
}

/// `r.await` waits for every task without blocking the runtime thread; the output is
/// [`MapResult::get`]'s (the results in input order, or the first error).
///
/// # Example
/// ```no_run
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = multiproc::pool::Pool::new(2)?;
/// assert_eq!(pool.map_async(square, 0..4)?.await?, vec![0, 1, 4, 9]);
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
impl<R> std::future::Future for MapResult<R> {
    type Output = Result<Vec<R>, PoolError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        if !self.inner.poll_done(cx) {
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(self.inner.take_values())
    }
}

/// An `IMap` is a [`futures_core::Stream`] of the same items as its `Iterator` form: each
/// `poll_next` takes a result that has arrived or registers the task, which the pool's manager
/// thread wakes on the next delivery. It submits input chunks as it goes, as `next` does.
///
/// # Example
/// ```no_run
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// use futures_core::Stream;
///
/// #[multiproc::worker]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = multiproc::pool::Pool::new(2)?;
/// let mut squares = pool.imap(square, 0..100)?;
/// let mut sum = 0;
/// while let Some(r) = poll_fn(|cx| Pin::new(&mut squares).poll_next(cx)).await {
///     sum += r?;
/// }
/// assert_eq!(sum, (0..100u64).map(|x| x * x).sum::<u64>());
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
impl<R: DeserializeOwned + Send + 'static> futures_core::Stream for IMap<R> {
    type Item = Result<R, PoolError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.top_up();
        if this.exhausted && this.yielded == this.items {
            return std::task::Poll::Ready(None);
        }
        let inner = this.inner.clone();
        let mut st = lock(&inner.st);
        loop {
            let item = if inner.ordered {
                match st.by_seq.get_mut(&this.next_seq) {
                    Some(q) => match q.pop_front() {
                        Some(item) => {
                            if q.is_empty() {
                                st.by_seq.remove(&this.next_seq);
                                this.next_seq += 1;
                            }
                            Some(item)
                        }
                        None => {
                            st.by_seq.remove(&this.next_seq);
                            this.next_seq += 1;
                            continue;
                        }
                    },
                    None => None,
                }
            } else {
                st.arrived.pop_front()
            };
            return match item {
                Some(item) => {
                    this.yielded += 1;
                    drop(st);
                    this.top_up();
                    std::task::Poll::Ready(Some(item))
                }
                None => {
                    match &st.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => st.waker = Some(cx.waker().clone()),
                    }
                    std::task::Poll::Pending
                }
            };
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let known = self.items - self.yielded;
        if self.exhausted {
            (known, Some(known))
        } else {
            (known, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_report_the_first_failure_in_input_order() {
        let mut s: Slots<u32> = Slots::new(4);
        s.set(0, Ok(1));
        s.set(2, Err(PoolError::Failed("two".into())));
        s.set(3, Ok(4));
        // Position 1 has no outcome (the pool was terminated): it comes first.
        assert_eq!(s.first_failure(), Some(PoolError::Terminated));
        s.set(1, Ok(2));
        assert_eq!(s.first_failure(), Some(PoolError::Failed("two".into())));
        assert!(!s.all_ok());
        let results = s.into_results();
        assert_eq!(results, vec![Ok(1), Ok(2), Err(PoolError::Failed("two".into())), Ok(4)]);
    }

    #[test]
    fn a_later_success_replaces_an_error_and_values_come_back_whole() {
        let mut s: Slots<u32> = Slots::new(2);
        s.set(0, Err(PoolError::Terminated));
        s.set(0, Ok(7));
        s.set(1, Ok(8));
        assert!(s.all_ok());
        assert!(matches!(s.take_values(), Ok(v) if v == [7, 8]));
        // Out of range is ignored, never a panic.
        let mut s: Slots<u32> = Slots::new(1);
        s.set(5, Ok(1));
        s.set(5, Err(PoolError::Terminated));
        assert_eq!(s.first_failure(), Some(PoolError::Terminated));
    }

    /// A value that counts its drops, to check that every stored value is dropped once.
    struct Counted(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn every_value_is_dropped_exactly_once_whatever_becomes_of_the_slots() {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = || Counted(drops.clone());
        let seen = || drops.load(Ordering::SeqCst);
        // Dropped with some positions filled, one replaced and one turned into an error.
        let mut s = Slots::new(130);
        for i in [0, 63, 64, 65, 129] {
            s.set(i, Ok(c()));
        }
        s.set(64, Ok(c()));
        assert_eq!(seen(), 1, "the replaced value");
        s.set(65, Err(PoolError::Terminated));
        assert_eq!(seen(), 2, "the value an error replaced");
        drop(s);
        assert_eq!(seen(), 6, "two, then the four values still held");
        // Every value into a vector, then dropped with it.
        drops.store(0, Ordering::SeqCst);
        let mut s = Slots::new(70);
        for i in (0..70).rev() {
            s.set(i, Ok(c()));
        }
        let v = s.take_values().expect("every position holds a value");
        assert!(s.all_ok() && s.first_failure().is_none(), "the slots are left empty");
        drop(s);
        assert_eq!((v.len(), seen()), (70, 0));
        drop(v);
        assert_eq!(seen(), 70);
        // Outcomes one by one, with gaps.
        drops.store(0, Ordering::SeqCst);
        let mut s = Slots::new(3);
        s.set(0, Ok(c()));
        s.set(2, Ok(c()));
        let r = s.into_results();
        assert!(r[0].is_ok() && r[2].is_ok());
        assert!(matches!(r[1], Err(PoolError::Terminated)));
        assert_eq!(seen(), 0);
        drop(r);
        assert_eq!(seen(), 2);
        // A failed `take_values` leaves the slots intact.
        drops.store(0, Ordering::SeqCst);
        let mut s = Slots::new(2);
        s.set(1, Ok(c()));
        assert_eq!((s.take_values().err(), seen()), (Some(PoolError::Terminated), 0));
        assert!(s.is_filled(1));
        drop(s);
        assert_eq!(seen(), 1);
    }

    #[test]
    fn values_round_trip_through_slots_at_every_bitmap_edge() {
        for n in [0, 1, 63, 64, 65, 128, 129] {
            let v: Vec<u64> = (0..n as u64).collect();
            let s = Slots::from_values(v.clone());
            assert!(s.all_ok(), "n = {n}");
            assert_eq!(s.first_failure(), None);
            let mut s = s;
            assert_eq!(s.take_values().ok(), Some(v.clone()));
            let mut s: Slots<u64> = Slots::new(n);
            for (i, x) in v.iter().enumerate() {
                assert!(s.first_failure().is_some(), "n = {n}, i = {i}");
                s.set(i, Ok(*x));
            }
            assert_eq!(s.into_results(), v.iter().map(|x| Ok(*x)).collect::<Vec<_>>());
        }
        // The first missing position skips the errors, across words.
        let mut s: Slots<u8> = Slots::new(200);
        for i in 0..200 {
            if i != 150 {
                s.set(
                    i,
                    if i % 7 == 0 {
                        Err(PoolError::Failed(i.to_string()))
                    } else {
                        Ok(1)
                    },
                );
            }
        }
        assert_eq!(s.first_missing(), Some(150));
        assert_eq!(s.first_failure(), Some(PoolError::Failed("0".into())));
        s.set(150, Ok(1));
        assert_eq!(s.first_missing(), None);
    }
}
