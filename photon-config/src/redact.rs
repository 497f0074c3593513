//! Hides secrets before a configuration is shown (`--print-config`).

/// Key names whose values are secrets.
const SECRET_KEY_PARTS: &[&str] = &[
    "secret", "password", "passwd", "token", "private", "api_key",
];

const REDACTED: &str = "<redacted>";

pub(crate) fn redact(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table.iter_mut() {
                if is_secret_key(key) {
                    *child = toml::Value::String(REDACTED.into());
                } else {
                    redact(child);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(redact),
        toml::Value::String(text) => {
            if let Some(hidden) = without_url_password(text) {
                *text = hidden;
            }
        }
        _ => {}
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// `scheme://user:pass@host/...` → `scheme://user:<redacted>@host/...`.
fn without_url_password(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host) = authority.rsplit_once('@')?;
    let (user, _password) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:{REDACTED}@{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_and_the_rest_kept() {
        let mut value: toml::Value = toml::from_str(
            r#"
            [standalone.auth]
            access_key = "AKIA"
            secret_key = "shh"
            [photon.integrated]
            chainfire_endpoints = ["http://root:hunter2@cf:2379/x", "http://cf2:2379"]
            [[users]]
            password = "p"
            "#,
        )
        .unwrap();
        redact(&mut value);
        let shown = value.to_string();
        assert!(shown.contains("AKIA"));
        assert!(!shown.contains("shh"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("http://root:<redacted>@cf:2379/x"),
            "{shown}"
        );
        assert!(shown.contains("http://cf2:2379"));
        assert!(!shown.contains("\"p\""), "{shown}");
    }
}
