//! The one error type of the DPDK wrappers.

use std::ffi::CStr;

/// A DPDK call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct DpdkError {
    /// What we were doing (the DPDK function or our operation).
    pub op: String,
    /// The errno-style code DPDK reported (positive), or 0 when it gave none.
    pub code: i32,
    /// DPDK's own description of the code, or ours.
    pub message: String,
}

impl DpdkError {
    /// Whether DPDK called its arguments invalid (`EINVAL`).
    pub fn is_invalid_argument(&self) -> bool {
        self.code == libc::EINVAL
    }

    /// An error from a DPDK return value that is a negative errno.
    pub(crate) fn from_ret(op: impl Into<String>, ret: i32) -> Self {
        Self::from_code(op, ret.abs())
    }

    /// An error from the current `rte_errno`.
    pub(crate) fn from_rte_errno(op: impl Into<String>) -> Self {
        // SAFETY: fg_errno only reads the calling thread's rte_errno.
        let code = unsafe { crate::ffi::fg_errno() };
        Self::from_code(op, code)
    }

    pub(crate) fn from_code(op: impl Into<String>, code: i32) -> Self {
        // SAFETY: rte_strerror accepts any value and returns a pointer to a
        // NUL-terminated string in static or thread-local storage.
        let message = unsafe { CStr::from_ptr(crate::ffi::rte_strerror(code)) }
            .to_string_lossy()
            .into_owned();
        Self {
            op: op.into(),
            code,
            message,
        }
    }

    /// An error that is ours, not DPDK's.
    pub(crate) fn other(op: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            op: op.into(),
            code: 0,
            message: message.into(),
        }
    }
}
