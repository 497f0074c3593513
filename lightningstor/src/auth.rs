//! Who may do what: access keys for SigV4 (s3s verifies signatures and presigned URLs with the
//! secret found here) and the anonymous reads allowed on public-read buckets.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

use crate::meta::MetadataStore;

/// Where an access key was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Config,
    CredentialsFile,
    Api,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Config => "config",
            KeySource::CredentialsFile => "credentials_file",
            KeySource::Api => "api",
        }
    }
}

/// Access keys from the config and the credentials file (fixed at start-up), then those
/// created through the admin API (in the metadata store, so they survive restarts).
#[derive(Clone)]
pub struct KeyRing {
    fixed: Arc<HashMap<String, (String, KeySource)>>,
    meta: Arc<dyn MetadataStore>,
}

impl KeyRing {
    pub fn new(fixed: Vec<(String, String, KeySource)>, meta: Arc<dyn MetadataStore>) -> Self {
        let fixed = fixed
            .into_iter()
            .map(|(access, secret, source)| (access, (secret, source)))
            .collect();
        Self {
            fixed: Arc::new(fixed),
            meta,
        }
    }

    pub fn fixed_keys(&self) -> impl Iterator<Item = (&str, KeySource)> {
        self.fixed
            .iter()
            .map(|(access, (_, source))| (access.as_str(), *source))
    }

    pub fn is_fixed(&self, access_key: &str) -> bool {
        self.fixed.contains_key(access_key)
    }

    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
    }
}

#[async_trait]
impl S3Auth for KeyRing {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some((secret, _)) = self.fixed.get(access_key) {
            return Ok(SecretKey::from(secret.as_str()));
        }
        match self.meta.get_access_key(access_key).await {
            Ok(Some(record)) => Ok(SecretKey::from(record.secret_key)),
            Ok(None) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
            Err(err) => {
                tracing::error!("cannot look up an access key: {err}");
                Err(s3_error!(
                    InternalError,
                    "metadata store failure; see the server log"
                ))
            }
        }
    }
}

/// The S3 operation a request turned out to be, filled in by [`Access`] once s3s has routed
/// it, so that metrics can label the response.
#[derive(Debug, Clone, Default)]
pub struct OperationSlot(Arc<OnceLock<String>>);

impl OperationSlot {
    pub fn name(&self) -> &str {
        self.0.get().map_or("unknown", String::as_str)
    }
}

/// Signed requests may do anything; anonymous ones only read public-read buckets.
pub struct Access {
    public_read: HashSet<String>,
}

impl Access {
    pub fn new(public_read: impl IntoIterator<Item = String>) -> Self {
        Self {
            public_read: public_read.into_iter().collect(),
        }
    }
}

/// What an anonymous client may do on a public-read bucket.
const PUBLIC_READ_OPERATIONS: [&str; 6] = [
    "GetObject",
    "HeadObject",
    "ListObjects",
    "ListObjectsV2",
    "HeadBucket",
    "GetBucketLocation",
];

#[async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let operation = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set(operation.clone());
        }
        if cx.credentials().is_some() {
            return Ok(());
        }
        let bucket = match cx.s3_path() {
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.as_ref()),
            S3Path::Root => None,
        };
        let public = bucket.is_some_and(|bucket| self.public_read.contains(bucket));
        if public && PUBLIC_READ_OPERATIONS.contains(&operation.as_str()) {
            return Ok(());
        }
        Err(s3_error!(
            AccessDenied,
            "Access Denied: this request must be signed"
        ))
    }
}

/// Rules for keys that come from operators: SigV4 puts the access key in a header field
/// separated by `/` and `,`, so those (and whitespace) cannot appear in it.
pub fn check_key_pair(access_key: &str, secret_key: &str) -> Result<(), String> {
    if !(3..=128).contains(&access_key.len()) {
        return Err(format!(
            "access key {access_key:?} must be 3 to 128 characters long"
        ));
    }
    if access_key
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | ',' | '=' | ':'))
    {
        return Err(format!(
            "access key {access_key:?} must not contain whitespace, '/', ',', '=' or ':'"
        ));
    }
    if secret_key.len() < 8 {
        return Err(format!(
            "the secret key of {access_key:?} must be at least 8 characters long"
        ));
    }
    if secret_key.chars().any(char::is_whitespace) {
        return Err(format!(
            "the secret key of {access_key:?} must not contain whitespace"
        ));
    }
    Ok(())
}

/// Reads a credentials file: one `ACCESS_KEY:SECRET_KEY` per line (the s3fs passwd format),
/// blank lines and `#` comments ignored.
pub fn read_credentials_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read credentials file {}: {err}", path.display()))?;
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), index + 1);
        let (access, secret) = line
            .split_once(':')
            .ok_or_else(|| format!("{at}: expected ACCESS_KEY:SECRET_KEY"))?;
        check_key_pair(access.trim(), secret.trim()).map_err(|reason| format!("{at}: {reason}"))?;
        keys.push((access.trim().to_owned(), secret.trim().to_owned()));
    }
    Ok(keys)
}

/// A new random key pair: 20 upper-case alphanumerics and 40 base64-like characters, the
/// shapes AWS uses.
pub fn generate_key_pair() -> (String, String) {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let mut rng = rand::rng();
    let access: String = (0..20)
        .map(|_| {
            let c = rng.sample(Alphanumeric) as char;
            c.to_ascii_uppercase()
        })
        .collect();
    let secret: String = (0..40).map(|_| rng.sample(Alphanumeric) as char).collect();
    (access, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_lines_are_checked_with_their_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "# team keys\nAKIAONE:secretsecret1\n\n AKIATWO : secretsecret2 \n",
        )
        .unwrap();
        assert_eq!(
            read_credentials_file(&path).unwrap(),
            [
                ("AKIAONE".to_owned(), "secretsecret1".to_owned()),
                ("AKIATWO".to_owned(), "secretsecret2".to_owned())
            ]
        );
        std::fs::write(&path, "AKIAONE:secretsecret1\nAKIATWO short\n").unwrap();
        let err = read_credentials_file(&path).unwrap_err();
        assert!(
            err.ends_with("credentials:2: expected ACCESS_KEY:SECRET_KEY"),
            "{err}"
        );
        std::fs::write(&path, "AKIAONE:short\n").unwrap();
        let err = read_credentials_file(&path).unwrap_err();
        assert!(err.contains(":1: the secret key"), "{err}");
    }

    #[test]
    fn generated_keys_pass_the_rules() {
        let (access, secret) = generate_key_pair();
        assert_eq!(access.len(), 20);
        assert_eq!(secret.len(), 40);
        check_key_pair(&access, &secret).unwrap();
    }
}
