//! Pure rules of `api_keys`: token format, hashing, scopes, expiry, bounds and
//! the verification decision. No I/O and no Postgres: the extension and the
//! admin service bind these rules, they never re-implement them.

pub mod base62;
pub mod bounds;
pub mod dashboard;
pub mod define;
pub mod error;
pub mod expiry;
pub mod ids;
pub mod issue;
pub mod legacy;
pub mod lifecycle;
pub mod limits;
pub mod mfa;
pub mod pg_array;
pub mod request;
pub mod scopes;
pub mod small_list;
pub mod status;
pub mod token;
pub mod usage;
pub mod verify;

pub use error::{Reason, RuleError};
pub use expiry::ExpiresIn;
pub use token::{Prefix, Token, TokenHash};
pub use verify::VerifyCode;
