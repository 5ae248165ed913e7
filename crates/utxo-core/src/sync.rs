//! The synchronisation primitives this crate uses: `std`'s normally, loom's under `cfg(loom)` so the
//! lock protocols can be model-checked (`cargo xtask loom`).

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, RwLock};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, RwLock};

/// Locks a mutex; a poisoned lock (a panic while held) still yields the data, which every writer
/// here leaves consistent before it can panic.
#[cfg(not(loom))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// See the non-loom version.
#[cfg(loom)]
pub(crate) fn lock<T>(m: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read-locks.
#[cfg(not(loom))]
pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// See the non-loom version.
#[cfg(loom)]
pub(crate) fn read<T>(m: &RwLock<T>) -> loom::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

/// Write-locks.
#[cfg(not(loom))]
pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// See the non-loom version.
#[cfg(loom)]
pub(crate) fn write<T>(m: &RwLock<T>) -> loom::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
