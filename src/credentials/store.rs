//! Client credentials and the current access token, persisted in `state_dir`.
//!
//! The file is written to a temporary file (mode 0600), fsynced, renamed over
//! the old one, and the directory fsynced: a crash leaves the old file or the
//! new one, never a mix. A file that cannot be parsed is moved aside with a
//! timestamp (never deleted) and the exporter registers again.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Name of the state file inside `state_dir`.
pub const STATE_FILE: &str = "credentials.json";

/// A registered client.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An access token and when it stops working.
#[derive(Clone)]
pub struct AccessToken {
    pub value: SecretString,
    pub expires_at: Timestamp,
    /// How long before `expires_at` it is renewed (see
    /// [`renew_margin`](super::renew_margin)); a stored token, whose lifetime
    /// is not kept, gets the full [`RENEW_MARGIN`](super::RENEW_MARGIN).
    pub renew_margin: jiff::SignedDuration,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What the state file holds.
#[derive(Debug, Clone)]
pub struct StoredState {
    pub client: ClientCredentials,
    pub token: Option<AccessToken>,
    /// The statement's application id at registration, for `credentials show`.
    pub application_id: Option<String>,
    pub registered_at: Option<Timestamp>,
}

/// Why the state directory or file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state_dir {dir} is not usable: {reason}: create it writable for the exporter's user (Kubernetes: mount a writable volume there)"
    )]
    Directory { dir: String, reason: String },
    #[error("cannot write {file}: {reason}")]
    Write { file: String, reason: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: u32,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    application_id: Option<String>,
    #[serde(default)]
    registered_at: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_expires_at: Option<String>,
}

/// Creates `dir` (mode 0700) if needed and proves files can be created there.
fn prepare(dir: &Path) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::Directory {
        dir: dir.display().to_string(),
        reason,
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode_0700()
            .create(dir)
            .map_err(|e| fail(e.to_string()))?;
    }
    if !dir.is_dir() {
        return Err(fail("not a directory".into()));
    }
    let probe = dir.join(".write-probe");
    File::create(&probe).map_err(|e| fail(format!("cannot create files there ({e})")))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// The state file of one exporter.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    file: PathBuf,
}

impl StateStore {
    /// Opens `dir`, creating it (mode 0700) if needed, and proves it is writable.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        prepare(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            file: dir.join(STATE_FILE),
        })
    }

    /// Whether [`open`](Self::open) would succeed, leaving no trace: the
    /// directories it would create are created to prove it, then removed.
    /// Returns whether a usable state file is stored there (the service
    /// then needs no statement to start).
    pub fn check(dir: &Path) -> Result<bool, StoreError> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        let prepared = prepare(dir);
        // Deepest first; a directory that something else filled stays.
        for created in &missing {
            let _ = fs::remove_dir(created);
        }
        prepared?;
        Ok(fs::read(dir.join(STATE_FILE))
            .ok()
            .and_then(|bytes| parse_state(&bytes))
            .is_some())
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Reads the stored state. A missing file is `None`; a corrupt one is
    /// moved aside (its new name is returned in the warning) and is `None` too.
    pub fn load(&self) -> (Option<StoredState>, Option<String>) {
        let bytes = match fs::read(&self.file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, None),
            Err(e) => return (None, Some(self.set_aside(&format!("unreadable ({e})")))),
        };
        match parse_state(&bytes) {
            Some(state) => (Some(state), None),
            None => (None, Some(self.set_aside("not a valid credentials file"))),
        }
    }

    /// Moves a bad state file aside and says what happened.
    fn set_aside(&self, why: &str) -> String {
        let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        let aside = self.dir.join(format!("{STATE_FILE}.corrupt-{stamp}"));
        match fs::rename(&self.file, &aside) {
            Ok(()) => format!(
                "state file {} is {why}: moved it to {} and will register again",
                self.file.display(),
                aside.display()
            ),
            Err(e) => format!(
                "state file {} is {why} and could not be moved aside ({e}): will register again",
                self.file.display()
            ),
        }
    }

    /// Writes the state atomically (temporary file, fsync, rename, directory fsync).
    pub fn save(&self, state: &StoredState) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(&encode(state)).expect("state serialises");
        self.write_atomically(&bytes, |_| Ok(()))
    }

    /// The atomic write (mode 0600), with a hook run after the temporary
    /// file is written (tests use it to simulate a crash half-way).
    pub(crate) fn write_atomically(
        &self,
        bytes: &[u8],
        before_rename: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        crate::durable::replace(&self.file, bytes, 0o600, before_rename).map_err(|e| {
            StoreError::Write {
                file: self.file.display().to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// Deletes the stored credentials; `true` if there were any.
    pub fn forget(&self) -> Result<bool, StoreError> {
        match fs::remove_file(&self.file) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::Write {
                file: self.file.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

trait DirBuilderExt {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirBuilderExt for fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700)
    }
}

fn encode(state: &StoredState) -> FileFormat {
    FileFormat {
        version: 1,
        client_id: state.client.client_id.clone(),
        client_secret: state.client.client_secret.expose_secret().to_owned(),
        application_id: state.application_id.clone(),
        registered_at: state.registered_at.map(|t| t.to_string()),
        access_token: state
            .token
            .as_ref()
            .map(|t| t.value.expose_secret().to_owned()),
        token_expires_at: state.token.as_ref().map(|t| t.expires_at.to_string()),
    }
}

/// The state a state file's bytes hold, or `None` when they are not a
/// valid state file (of any kind: truncated, empty, foreign, hostile).
pub fn parse_state(bytes: &[u8]) -> Option<StoredState> {
    serde_json::from_slice::<FileFormat>(bytes)
        .ok()
        .and_then(decode)
}

fn decode(file: FileFormat) -> Option<StoredState> {
    if file.version != 1 || file.client_id.is_empty() || file.client_secret.is_empty() {
        return None;
    }
    let token = match (file.access_token, file.token_expires_at) {
        (Some(value), Some(at)) => Some(AccessToken {
            value: value.into(),
            expires_at: at.parse().ok()?,
            renew_margin: super::RENEW_MARGIN,
        }),
        _ => None,
    };
    Some(StoredState {
        client: ClientCredentials {
            client_id: file.client_id,
            client_secret: file.client_secret.into(),
        },
        token,
        application_id: file.application_id,
        registered_at: file.registered_at.and_then(|t| t.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn state(secret: &str) -> StoredState {
        StoredState {
            client: ClientCredentials {
                client_id: "id-1".into(),
                client_secret: secret.to_owned().into(),
            },
            token: Some(AccessToken {
                value: "tok-value-123".to_owned().into(),
                expires_at: Timestamp::UNIX_EPOCH,
                renew_margin: crate::credentials::RENEW_MARGIN,
            }),
            application_id: Some("app".into()),
            registered_at: None,
        }
    }

    #[test]
    fn debug_prints_never_show_secrets() {
        let printed = format!("{:?}", state("s3cret-value"));
        assert!(printed.contains("id-1"), "{printed}");
        assert!(
            !printed.contains("s3cret-value") && !printed.contains("tok-value-123"),
            "{printed}"
        );
    }

    #[test]
    fn saves_privately_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("nested")).unwrap();
        store.save(&state("s3cret")).unwrap();
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (loaded, warning) = store.load();
        let loaded = loaded.unwrap();
        assert!(warning.is_none());
        assert_eq!(loaded.client.client_secret.expose_secret(), "s3cret");
        assert_eq!(loaded.token.unwrap().expires_at, Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn crash_before_rename_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&state("old")).unwrap();
        let crash = store.write_atomically(b"{\"version\": 1, \"client_", |_| {
            Err(std::io::Error::other("killed"))
        });
        assert!(crash.is_err());
        let (loaded, warning) = store.load();
        assert_eq!(loaded.unwrap().client.client_secret.expose_secret(), "old");
        assert!(warning.is_none());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn corrupt_file_is_moved_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(store.path(), b"{ half a file").unwrap();
        let (loaded, warning) = store.load();
        assert!(loaded.is_none());
        let warning = warning.unwrap();
        assert!(warning.contains("moved it to"), "{warning}");
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            fs::read(dir.path().join(&aside[0])).unwrap(),
            b"{ half a file"
        );
    }

    #[test]
    fn unusable_state_dir_is_a_clear_error() {
        // A path under a regular file cannot be created, even by root.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = StateStore::open(&file.join("state"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not usable") && err.contains("writable"),
            "{err}"
        );
        let err = StateStore::open(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
