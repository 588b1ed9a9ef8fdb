//! Property tests of the token format (SPEC §3).

use api_keys_core::token::{self, Prefix, Token, BODY_LEN, MASK_DOTS};
use proptest::prelude::*;
use regex::Regex;

fn segment() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,15}"
}

fn prefix() -> impl Strategy<Value = Prefix> {
    (segment(), proptest::option::of(segment()))
        .prop_map(|(head, env)| Prefix::new(&head, env.as_deref()).unwrap())
}

const SCANNER: &str = r"\b[a-z][a-z0-9]{0,15}(_[a-z][a-z0-9]{0,15})?_[0-9A-Za-z]{38}\b";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_generated_token_parses_and_matches_the_scanner_regex(p in prefix()) {
        let t = Token::generate(&p).unwrap();
        let parsed = token::parse(t.expose()).expect("generated token parses");
        prop_assert_eq!(parsed.prefix(), p.as_str());
        let re = Regex::new(&format!("^{SCANNER}$")).unwrap();
        prop_assert!(re.is_match(t.expose()));
    }

    #[test]
    fn any_single_character_change_is_rejected(p in prefix(), pos in any::<prop::sample::Index>(), c in any::<char>()) {
        let t = Token::generate(&p).unwrap();
        let s = t.expose();
        let i = pos.index(s.len());
        let original = s.as_bytes()[i] as char;
        prop_assume!(c != original);
        let mut changed = String::with_capacity(s.len() + 4);
        changed.push_str(&s[..i]);
        changed.push(c);
        changed.push_str(&s[i + 1..]);
        prop_assert!(token::parse(&changed).is_none(), "{} accepted", changed);
    }

    #[test]
    fn masked_token_shows_only_prefix_and_last_four(p in prefix()) {
        let t = Token::generate(&p).unwrap();
        let s = t.expose();
        let masked = token::mask(s).unwrap();
        let expected = format!("{}_{}{}", p.as_str(), MASK_DOTS, &s[s.len() - 4..]);
        prop_assert_eq!(&masked, &expected);
        // no run of 5 body chars from the secret part survives masking
        let body = &s[s.len() - BODY_LEN..s.len() - 4];
        for w in body.as_bytes().windows(5) {
            prop_assert!(!masked.contains(std::str::from_utf8(w).unwrap()));
        }
    }

    #[test]
    fn parsing_never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = token::parse(&s);
        let _ = token::mask(&s);
    }

    #[test]
    fn parsing_never_panics_on_token_shaped_text(s in "[a-z_0-9A-Z]{0,80}") {
        if let Some(p) = token::parse(&s) {
            prop_assert!(p.text().len() >= BODY_LEN + 2);
        }
    }
}
