//! Maps core's reasons to SQLSTATEs at the SQL boundary.

use api_keys_core::{Reason, RuleError};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

pub fn sqlstate(reason: Reason) -> PgSqlErrorCode {
    match reason {
        Reason::InvalidArgument
        | Reason::UnknownKeyType
        | Reason::UnknownEnvironment
        | Reason::UnknownScope
        | Reason::ExclusiveScope
        | Reason::NameRequired
        | Reason::InvalidExpiry => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        Reason::KeyLimitReached | Reason::TypeLimitReached => {
            PgSqlErrorCode::ERRCODE_CHECK_VIOLATION
        }
        Reason::KeyNotRevocable => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        Reason::KeyNotFound => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
    }
}

/// Raises `err` as an ERROR with its reason's SQLSTATE. Never returns.
pub fn raise(err: RuleError) -> ! {
    ereport!(ERROR, sqlstate(err.reason), err.to_string());
}

pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, RuleError> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}
