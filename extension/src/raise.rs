//! Raises core's rule errors at the SQL boundary, with the SQLSTATE that
//! core assigns to each reason.

use api_keys_core::RuleError;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Postgres' MAKE_SQLSTATE: five characters packed six bits each.
fn sqlstate(code: &str) -> PgSqlErrorCode {
    let packed = code.bytes().take(5).enumerate().fold(0i32, |acc, (i, c)| {
        acc + (((i32::from(c) - i32::from(b'0')) & 0x3F) << (6 * i))
    });
    PgSqlErrorCode::from(packed)
}

/// Raises `err` as an ERROR with its reason's SQLSTATE. Never returns.
pub fn raise(err: RuleError) -> ! {
    ereport!(ERROR, sqlstate(err.reason.sqlstate()), err.to_string());
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
