//! Where a request carries its key (SPEC §6): PostgREST hands the request
//! headers to the database as JSON with lower-cased names.

use serde_json::Value;

use crate::token;

/// The API key of a request: `x-api-key` if present and non-blank, else the
/// bearer credential of `authorization` when it has the shape of one of our
/// tokens (so a JWT there is left alone). Header names match case-insensitively.
pub fn token_from_headers(headers: &Value) -> Option<&str> {
    let obj = headers.as_object()?;
    let header = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(key) = header("x-api-key") {
        return Some(key);
    }
    let auth = header("authorization")?;
    let (scheme, credential) = auth.split_once(char::is_whitespace)?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token::has_shape(credential)).then_some(credential)
}

/// [`token_from_headers`] on the text of `request.headers`; `None` for
/// missing or malformed JSON.
pub fn token_from_headers_json(json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    token_from_headers(&v).map(str::to_owned)
}

/// The `otp` header (RubyGems' name) of `request.headers`, when it is a
/// string; `None` for missing or malformed JSON.
pub fn otp_from_headers_json(json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    v.get("otp")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Prefix, Token};
    use serde_json::json;

    fn tok() -> String {
        Token::generate(&Prefix::new("sk", Some("live")).unwrap())
            .unwrap()
            .expose()
            .to_owned()
    }

    #[test]
    fn the_otp_header_is_read_when_it_is_a_string() {
        assert_eq!(
            otp_from_headers_json(r#"{"otp": "123456", "x-api-key": "k"}"#).as_deref(),
            Some("123456")
        );
        assert_eq!(otp_from_headers_json(r#"{"otp": 123456}"#), None);
        assert_eq!(otp_from_headers_json(r#"{"x-api-key": "k"}"#), None);
        assert_eq!(otp_from_headers_json("not json"), None);
    }

    #[test]
    fn x_api_key_wins_over_authorization() {
        let (a, b) = (tok(), tok());
        let h = json!({"x-api-key": a, "authorization": format!("Bearer {b}")});
        assert_eq!(token_from_headers(&h), Some(a.as_str()));
    }

    #[test]
    fn bearer_is_used_only_when_it_looks_like_our_token() {
        let t = tok();
        assert_eq!(
            token_from_headers(&json!({"authorization": format!("Bearer {t}")})),
            Some(t.as_str())
        );
        assert_eq!(
            token_from_headers(&json!({"authorization": format!("bearer  {t} ")})),
            Some(t.as_str())
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoid2ViIn0.abc";
        assert_eq!(
            token_from_headers(&json!({"authorization": format!("Bearer {jwt}")})),
            None
        );
        assert_eq!(
            token_from_headers(&json!({"authorization": format!("Basic {t}")})),
            None
        );
    }

    #[test]
    fn jwt_in_authorization_with_key_in_x_api_key_uses_the_key() {
        let t = tok();
        let h = json!({"authorization": "Bearer eyJ.eyJ.sig", "x-api-key": t});
        assert_eq!(token_from_headers(&h), Some(t.as_str()));
    }

    #[test]
    fn blank_values_and_odd_shapes_yield_nothing() {
        assert_eq!(token_from_headers(&json!({"x-api-key": "  "})), None);
        assert_eq!(token_from_headers(&json!({"x-api-key": 42})), None);
        assert_eq!(token_from_headers(&json!(["x-api-key"])), None);
        assert_eq!(token_from_headers_json("not json"), None);
        assert_eq!(token_from_headers_json("{}"), None);
    }

    #[test]
    fn header_names_match_case_insensitively() {
        let t = tok();
        assert_eq!(
            token_from_headers(&json!({"X-Api-Key": t})),
            Some(t.as_str())
        );
    }
}
