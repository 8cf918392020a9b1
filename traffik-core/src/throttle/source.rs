//! Where a throttle gets its identity, rate and cost for each hit: fixed values or functions.

use std::fmt;
use std::sync::Arc;

use super::IdentityMemo;
use crate::{BoxFuture, Context, Identity, MaybeReady, ParseRateError, Rate};

type IdentifyFn<C> = dyn for<'a> Fn(&'a C) -> MaybeReady<'a, Identity<'a>> + Send + Sync;
type RateFnInner<C> = dyn for<'a> Fn(&'a C, &'a Context) -> MaybeReady<'a, Rate> + Send + Sync;
type CostFnInner<C> = dyn for<'a> Fn(&'a C, &'a Context) -> MaybeReady<'a, u64> + Send + Sync;

/// Tells who a hit belongs to: a function of the connection returning an [`Identity`]
/// (a key, or [`EXEMPTED`](crate::EXEMPTED)).
///
/// ```
/// use traffik_core::{EXEMPTED, Identity};
/// use traffik_core::throttle::Identifier;
///
/// struct Request { api_key: Option<String>, admin: bool }
///
/// let by_api_key = Identifier::new(|request: &Request| match (&request.api_key, request.admin) {
///     (_, true) => EXEMPTED,
///     (Some(key), false) => Identity::from(key.as_str()),
///     (None, false) => Identity::from("anonymous"),
/// });
/// # let _ = by_api_key;
/// ```
pub struct Identifier<C: ?Sized> {
    function: Arc<IdentifyFn<C>>,
    synchronous: bool,
    memoized: bool,
}

impl<C: ?Sized> Identifier<C> {
    /// A synchronous identifier.
    pub fn new<F>(identify: F) -> Self
    where
        F: for<'a> Fn(&'a C) -> Identity<'a> + Send + Sync + 'static,
    {
        Identifier {
            function: Arc::new(move |conn| MaybeReady::ready(identify(conn))),
            synchronous: true,
            memoized: false,
        }
    }

    /// An asynchronous identifier (a database or cache lookup, say).
    pub fn from_async<F>(identify: F) -> Self
    where
        F: for<'a> Fn(&'a C) -> BoxFuture<'a, Identity<'a>> + Send + Sync + 'static,
    {
        Identifier {
            function: Arc::new(move |conn| MaybeReady::boxed(identify(conn))),
            synchronous: false,
            memoized: true,
        }
    }

    /// The identity of `conn`: ready at once for a synchronous identifier, a future for an
    /// asynchronous one (await it either way).
    pub fn call<'a>(&self, conn: &'a C) -> MaybeReady<'a, Identity<'a>> {
        (self.function)(conn)
    }

    /// The identity of `conn`, if this identifier is synchronous (`None` for an asynchronous
    /// one). Lets one identifier fall back on another.
    #[must_use]
    pub fn call_now<'a>(&self, conn: &'a C) -> Option<Identity<'a>> {
        if !self.synchronous {
            return None;
        }
        self.call(conn).into_ready().ok()
    }

    /// Whether the identity is computed once per connection when the hit carries an
    /// [`IdentityMemo`] (the reference's `cache_ids`): on by default for an asynchronous
    /// identifier (a lookup, a token decode), off for a synchronous one (reading an address
    /// costs less than the memo). Turn it on for an expensive synchronous identifier.
    #[must_use]
    pub fn memoized(mut self, memoized: bool) -> Self {
        self.memoized = memoized;
        self
    }

    pub(crate) fn is_synchronous(&self) -> bool {
        self.synchronous
    }

    /// Whether it is [memoized](Self::memoized).
    #[must_use]
    pub fn is_memoized(&self) -> bool {
        self.memoized
    }
}

impl<C: ?Sized + 'static> Identifier<C> {
    /// The identity of `conn` without awaiting: a synchronous identifier's, or one already in
    /// `memo`. `None` otherwise, and then the identifier has not run.
    #[inline]
    pub(crate) fn identify_now<'a>(
        &self,
        conn: &'a C,
        memo: Option<&'a IdentityMemo>,
    ) -> Option<Identity<'a>> {
        if self.synchronous {
            // Through the memo when memoized: computed once, kept for the connection's other
            // hits.
            return self.identify(conn, memo).into_ready().ok();
        }
        memo.filter(|_| self.memoized)?.get(self.memo_key())
    }

    fn memo_key(&self) -> usize {
        Arc::as_ptr(&self.function).cast::<()>() as usize
    }

    /// The identity of `conn`, from `memo` when this identifier is memoized and already ran
    /// for the connection (then stored there).
    #[inline]
    pub(crate) fn identify<'a>(
        &self,
        conn: &'a C,
        memo: Option<&'a IdentityMemo>,
    ) -> MaybeReady<'a, Identity<'a>> {
        let Some(memo) = memo.filter(|_| self.memoized) else {
            return self.call(conn);
        };
        let key = self.memo_key();
        if let Some(identity) = memo.get(key) {
            return MaybeReady::ready(identity);
        }
        let function = Arc::clone(&self.function);
        let handle: Box<dyn std::any::Any + Send + Sync> = Box::new(Arc::clone(&function));
        match function(conn).into_ready() {
            Ok(identity) => {
                memo.put(key, identity.clone().into_owned(), handle);
                MaybeReady::ready(identity)
            }
            Err(pending) => MaybeReady::boxed(async move {
                let identity = pending.await;
                memo.put(key, identity.clone().into_owned(), handle);
                identity
            }),
        }
    }
}

/// A rate chosen per hit (per user plan, say).
///
/// ```
/// use traffik_core::{Context, Rate};
/// use traffik_core::throttle::RateFn;
///
/// let by_plan = RateFn::new(|_user: &str, context: &Context| match context.get_str("plan") {
///     Some("pro") => Rate::per_minute(1_000),
///     _ => Rate::per_minute(60),
/// });
/// # let _ = by_plan;
/// ```
pub struct RateFn<C: ?Sized> {
    function: Arc<RateFnInner<C>>,
    synchronous: bool,
}

impl<C: ?Sized> RateFn<C> {
    /// A synchronous rate function.
    pub fn new<F>(rate: F) -> Self
    where
        F: for<'a> Fn(&'a C, &'a Context) -> Rate + Send + Sync + 'static,
    {
        RateFn {
            function: Arc::new(move |conn, context| MaybeReady::ready(rate(conn, context))),
            synchronous: true,
        }
    }

    /// An asynchronous rate function; its future may borrow the connection and context.
    pub fn from_async<F>(rate: F) -> Self
    where
        F: for<'a> Fn(&'a C, &'a Context) -> BoxFuture<'a, Rate> + Send + Sync + 'static,
    {
        RateFn {
            function: Arc::new(move |conn, context| MaybeReady::boxed(rate(conn, context))),
            synchronous: false,
        }
    }
}

/// A cost chosen per hit (the size of an upload, say).
///
/// ```
/// use traffik_core::Context;
/// use traffik_core::throttle::CostFn;
///
/// struct Upload { bytes: u64 }
/// let per_megabyte = CostFn::new(|upload: &Upload, _: &Context| upload.bytes.div_ceil(1 << 20).max(1));
/// # let _ = per_megabyte;
/// ```
pub struct CostFn<C: ?Sized> {
    function: Arc<CostFnInner<C>>,
    synchronous: bool,
}

impl<C: ?Sized> CostFn<C> {
    /// A synchronous cost function.
    pub fn new<F>(cost: F) -> Self
    where
        F: for<'a> Fn(&'a C, &'a Context) -> u64 + Send + Sync + 'static,
    {
        CostFn {
            function: Arc::new(move |conn, context| MaybeReady::ready(cost(conn, context))),
            synchronous: true,
        }
    }

    /// An asynchronous cost function; its future may borrow the connection and context.
    ///
    /// ```
    /// use traffik_core::Context;
    /// use traffik_core::throttle::CostFn;
    ///
    /// async fn rows_requested(query: &str) -> u64 { query.len() as u64 }
    /// let by_rows = CostFn::from_async(|query: &str, _: &Context| Box::pin(rows_requested(query)));
    /// # let _: CostFn<str> = by_rows;
    /// ```
    pub fn from_async<F>(cost: F) -> Self
    where
        F: for<'a> Fn(&'a C, &'a Context) -> BoxFuture<'a, u64> + Send + Sync + 'static,
    {
        CostFn {
            function: Arc::new(move |conn, context| MaybeReady::boxed(cost(conn, context))),
            synchronous: false,
        }
    }
}

/// The rate of a throttle: fixed, or chosen per hit.
pub(crate) enum RateSource<C: ?Sized> {
    Fixed(Rate),
    Dynamic(RateFn<C>),
}

/// The cost of a throttle's hits: fixed, or chosen per hit.
pub(crate) enum CostSource<C: ?Sized> {
    Fixed(u64),
    Dynamic(CostFn<C>),
}

impl<C: ?Sized> RateSource<C> {
    pub(crate) fn is_synchronous(&self) -> bool {
        match self {
            RateSource::Fixed(_) => true,
            RateSource::Dynamic(function) => function.synchronous,
        }
    }

    pub(crate) fn fixed(&self) -> Option<Rate> {
        match self {
            RateSource::Fixed(rate) => Some(*rate),
            RateSource::Dynamic(_) => None,
        }
    }

    pub(crate) fn resolve<'a>(&self, conn: &'a C, context: &'a Context) -> MaybeReady<'a, Rate> {
        match self {
            RateSource::Fixed(rate) => MaybeReady::ready(*rate),
            RateSource::Dynamic(function) => (function.function)(conn, context),
        }
    }
}

impl<C: ?Sized> CostSource<C> {
    pub(crate) fn is_synchronous(&self) -> bool {
        match self {
            CostSource::Fixed(_) => true,
            CostSource::Dynamic(function) => function.synchronous,
        }
    }

    pub(crate) fn resolve<'a>(&self, conn: &'a C, context: &'a Context) -> MaybeReady<'a, u64> {
        match self {
            CostSource::Fixed(cost) => MaybeReady::ready(*cost),
            CostSource::Dynamic(function) => (function.function)(conn, context),
        }
    }
}

/// Something that names a rate: a [`Rate`] or a rate string.
pub trait IntoRate {
    /// The rate, or why the string is not one.
    fn into_rate(self) -> Result<Rate, ParseRateError>;
}

impl IntoRate for Rate {
    fn into_rate(self) -> Result<Rate, ParseRateError> {
        Ok(self)
    }
}

impl IntoRate for &str {
    fn into_rate(self) -> Result<Rate, ParseRateError> {
        self.parse()
    }
}

impl IntoRate for String {
    fn into_rate(self) -> Result<Rate, ParseRateError> {
        self.parse()
    }
}

impl IntoRate for &String {
    fn into_rate(self) -> Result<Rate, ParseRateError> {
        self.parse()
    }
}

impl<C: ?Sized> Clone for Identifier<C> {
    fn clone(&self) -> Self {
        Identifier {
            function: Arc::clone(&self.function),
            synchronous: self.synchronous,
            memoized: self.memoized,
        }
    }
}

impl<C: ?Sized> fmt::Debug for Identifier<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identifier")
            .field("synchronous", &self.synchronous)
            .field("memoized", &self.memoized)
            .finish_non_exhaustive()
    }
}

macro_rules! clone_and_debug {
    ($($name:ident),*) => {$(
        impl<C: ?Sized> Clone for $name<C> {
            fn clone(&self) -> Self {
                $name { function: Arc::clone(&self.function), synchronous: self.synchronous }
            }
        }

        impl<C: ?Sized> fmt::Debug for $name<C> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("synchronous", &self.synchronous).finish_non_exhaustive()
            }
        }
    )*};
}

clone_and_debug!(RateFn, CostFn);

impl<C: ?Sized> Clone for RateSource<C> {
    fn clone(&self) -> Self {
        match self {
            RateSource::Fixed(rate) => RateSource::Fixed(*rate),
            RateSource::Dynamic(function) => RateSource::Dynamic(function.clone()),
        }
    }
}

impl<C: ?Sized> Clone for CostSource<C> {
    fn clone(&self) -> Self {
        match self {
            CostSource::Fixed(cost) => CostSource::Fixed(*cost),
            CostSource::Dynamic(function) => CostSource::Dynamic(function.clone()),
        }
    }
}

impl<C: ?Sized> fmt::Debug for RateSource<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateSource::Fixed(rate) => write!(f, "{rate}"),
            RateSource::Dynamic(function) => function.fmt(f),
        }
    }
}

impl<C: ?Sized> fmt::Debug for CostSource<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CostSource::Fixed(cost) => write!(f, "{cost}"),
            CostSource::Dynamic(function) => function.fmt(f),
        }
    }
}
