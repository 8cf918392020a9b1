//! [`StoreId`]: which store a backend handle decides on.

/// Identifies the store behind a backend handle ([`Backend::store_id`](super::Backend::store_id)):
/// equal for clones of one backend and for wrappers around it. Only comparable, never
/// dereferenced.
///
/// ```
/// use traffik_core::MemoryBackend;
/// use traffik_core::backend::Backend;
///
/// let memory = MemoryBackend::new();
/// assert_eq!(memory.store_id(), memory.clone().store_id());
/// assert_ne!(memory.store_id(), MemoryBackend::new().store_id());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId(usize);

impl StoreId {
    /// The id of the store at `shared`: the address of a backend's shared state.
    #[must_use]
    pub fn of<T: ?Sized>(shared: &T) -> Self {
        StoreId(std::ptr::from_ref(shared).cast::<()>() as usize)
    }
}
