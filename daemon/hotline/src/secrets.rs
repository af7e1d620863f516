//! Secret settings (passwords, tokens, keys) may also come from files, so they need not
//! sit in hotline.toml or in a unit's `Environment=`: `HOTLINE_<SECTION>__<KEY>_FILE=/path`,
//! or a systemd credential named `<section>.<key>` (`LoadCredential=`), which systemd puts
//! in `$CREDENTIALS_DIRECTORY`. A file's contents are the value, trailing newline removed.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// The secret keys. `*` is any key of a map (an SMS gateway header) or any entry of a
/// list of tables (its index, or a chat site's `key`).
pub const SECRETS: &[&str] = &[
    "trunk.password",
    "api.token",
    // A PostgreSQL URL carries the database password.
    "store.database_url",
    "notify.email.password",
    // GET gateways take their key in the URL.
    "notify.sms.url",
    "notify.sms.headers.*",
    "chat.sites.*.hmac_secret",
    "web.ice_servers.*.credential",
    // The HMAC key that signs a webhook's deliveries.
    "webhooks.*.secret",
];

/// Whether the setting at `path` (table and key names) is a secret.
pub fn is_secret(path: &[String]) -> bool {
    SECRETS.iter().any(|pattern| {
        let parts: Vec<&str> = pattern.split('.').collect();
        parts.len() == path.len()
            && parts
                .iter()
                .zip(path)
                .all(|(p, s)| *p == "*" || p.eq_ignore_ascii_case(s))
    })
}

/// A secret file's contents without the trailing newline editors and `echo` add.
pub fn read_secret(variable: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        variable: variable.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// A secret from the systemd credentials directory.
pub struct Credential {
    /// `<section>.<key>`, as named in `LoadCredential=`.
    pub name: String,
    pub path: Vec<String>,
    pub value: String,
}

/// Every credential in `dir`. One not named after a secret key is an error: a typo would
/// otherwise leave the setting at its file value without a word.
pub fn credentials(dir: &Path) -> Result<Vec<Credential>, ConfigError> {
    let read_dir = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let entry = entry.map_err(read_dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path: Vec<String> = name.split('.').map(str::to_string).collect();
        if !is_secret(&path) {
            return Err(ConfigError::Override {
                origin: format!("credential {name} (in $CREDENTIALS_DIRECTORY)"),
                message: format!(
                    "not a secret setting; credentials may be {}",
                    SECRETS.join(", ")
                ),
            });
        }
        let file: PathBuf = entry.path();
        let value = read_secret(&format!("credential {name}"), &file)?;
        found.push(Credential { name, path, value });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn secret_keys_and_wildcards() {
        for s in [
            "trunk.password",
            "api.token",
            "notify.sms.headers.Authorization",
            "chat.sites.demo.hmac_secret",
            "web.ice_servers.0.credential",
            "webhooks.0.secret",
        ] {
            assert!(is_secret(&path(s)), "{s}");
        }
        for s in [
            "trunk.username",
            "sip.listen",
            "notify.sms.headers",
            "chat.sites.demo.name",
        ] {
            assert!(!is_secret(&path(s)), "{s}");
        }
    }
}
