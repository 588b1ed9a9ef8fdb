//! An `application/x-www-form-urlencoded` body, with repeated fields
//! (`scopes=a&scopes=b`) kept.

use axum::body::Bytes;

pub struct FormBody(Vec<(String, String)>);

impl FormBody {
    pub fn parse(body: &[u8]) -> FormBody {
        FormBody(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn from_query(query: Option<&str>) -> FormBody {
        FormBody::parse(query.unwrap_or("").as_bytes())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field as typed, `""` when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_owned()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl From<Bytes> for FormBody {
    fn from(b: Bytes) -> Self {
        FormBody::parse(&b)
    }
}

/// `""` → `None`: an empty select or text means "not given".
pub fn given(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_are_kept_in_order() {
        let f = FormBody::parse(b"csrf=x&scopes=a&scopes=b%3Ac&name=%3Cscript%3E");
        assert_eq!(f.all("scopes"), ["a", "b:c"]);
        assert_eq!(f.get("name"), Some("<script>"));
        assert_eq!(f.get("nope"), None);
        assert_eq!(f.text("nope"), "");
    }
}
