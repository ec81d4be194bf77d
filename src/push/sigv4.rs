//! AWS Signature Version 4 for a store that takes only signed requests
//! (Amazon Managed Prometheus: service `aps`), with Prometheus's `sigv4:`
//! keys. The signature is the AWS SDK's own signer (`aws-sigv4`); the
//! credentials come, in the SDK's order:
//!
//! 1. `access_key` with the secret from `secret_key_file` or
//!    `AWS_SECRET_ACCESS_KEY` (never from the configuration);
//! 2. the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!    `AWS_SESSION_TOKEN`), unless a `profile` is named;
//! 3. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//!    `~/.aws/credentials`), section `profile` (else `AWS_PROFILE`, else
//!    `default`);
//! 4. a web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`, as
//!    EKS gives a service account): STS `AssumeRoleWithWebIdentity`.
//!
//! With `role_arn`, those credentials assume the role (STS `AssumeRole`).
//! Credentials from STS are kept until five minutes before they expire.
//! STS is `AWS_ENDPOINT_URL_STS` (else `AWS_ENDPOINT_URL`), else the
//! region's. No secret is ever logged or shown: errors name the source.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::config::SigV4Config;

/// The service Amazon Managed Prometheus signs for.
pub const SERVICE: &str = "aps";
/// STS credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// The session name STS records for an assumed role.
const SESSION_NAME: &str = "cmu-exporter";

/// A set of credentials; the secret and token never printed.
#[derive(Clone)]
struct Keys {
    access_key: String,
    secret: SecretString,
    token: Option<SecretString>,
    expires: Option<SystemTime>,
    /// Where they came from, for messages.
    source: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_key", &self.access_key)
            .field("source", &self.source)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Keys {
    fn fresh(&self, now: SystemTime) -> bool {
        self.expires
            .is_none_or(|at| at.duration_since(now).is_ok_and(|left| left > RENEW_BEFORE))
    }
}

/// What the environment says, read once per call (tests set it per process).
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Signs requests for one remote.
pub struct Signer {
    config: SigV4Config,
    region: String,
    sts: reqwest::Client,
    keys: Mutex<Option<Keys>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The signer of `config`; the region is `sigv4.region`, else
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub fn new(config: &SigV4Config, sts: reqwest::Client) -> Result<Self, String> {
        let region = config
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                "sigv4.region: not set, nor AWS_REGION or AWS_DEFAULT_REGION: give the workspace's region, e.g. `region: eu-west-1`".to_owned()
            })?;
        let signer = Self {
            config: config.clone(),
            region,
            sts,
            keys: Mutex::new(None),
        };
        // Static keys are checked now, so that check-config and a start say it.
        if signer.config.access_key.is_some() {
            signer.base_keys_static()?;
        }
        Ok(signer)
    }

    /// The headers that sign a `POST` of `body` to `url` with `headers`
    /// (all of them signed, `host` included).
    pub async fn sign(
        &self,
        url: &reqwest::Url,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let keys = self.keys().await?;
        let scope = Scope {
            method: "POST",
            service: SERVICE,
            region: &self.region,
            at: SystemTime::now(),
        };
        signed_headers(&keys, &scope, url, headers, body)
    }

    async fn keys(&self) -> Result<Keys, String> {
        let mut held = self.keys.lock().await;
        let now = SystemTime::now();
        if let Some(keys) = held.as_ref()
            && keys.fresh(now)
        {
            return Ok(keys.clone());
        }
        let base = self.base_keys().await?;
        let keys = match &self.config.role_arn {
            Some(role) => self.assume_role(&base, role).await?,
            None => base,
        };
        *held = Some(keys.clone());
        Ok(keys)
    }

    fn base_keys_static(&self) -> Result<Keys, String> {
        let access_key = self.config.access_key.clone().unwrap_or_default();
        let secret = match &self.config.secret_key_file {
            Some(file) => read_secret_file(file)?,
            None => env("AWS_SECRET_ACCESS_KEY").map(SecretString::from).ok_or_else(|| {
                "sigv4.access_key: its secret is neither in `secret_key_file` nor in AWS_SECRET_ACCESS_KEY".to_owned()
            })?,
        };
        Ok(Keys {
            access_key,
            secret,
            token: None,
            expires: None,
            source: "sigv4.access_key".into(),
        })
    }

    /// The credentials before any `role_arn`, in the SDK's order.
    async fn base_keys(&self) -> Result<Keys, String> {
        if self.config.access_key.is_some() {
            return self.base_keys_static();
        }
        if self.config.profile.is_none()
            && let (Some(access_key), Some(secret)) =
                (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Keys {
                access_key,
                secret: secret.into(),
                token: env("AWS_SESSION_TOKEN").map(SecretString::from),
                expires: None,
                source: "the environment (AWS_ACCESS_KEY_ID)".into(),
            });
        }
        let profile = self
            .config
            .profile
            .clone()
            .or_else(|| env("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_owned());
        let file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".aws/credentials")));
        if let Some(file) = file
            && let Ok(text) = std::fs::read_to_string(&file)
            && let Some(keys) = profile_keys(&text, &profile, &file)
        {
            return Ok(keys);
        }
        if let (Some(token_file), Some(role)) =
            (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
        {
            let token = std::fs::read_to_string(&token_file).map_err(|e| {
                format!("sigv4: cannot read the web identity token {token_file} (AWS_WEB_IDENTITY_TOKEN_FILE): {e}")
            })?;
            let form = [
                ("Action", "AssumeRoleWithWebIdentity"),
                ("Version", "2011-06-15"),
                ("RoleArn", role.as_str()),
                ("RoleSessionName", SESSION_NAME),
                ("WebIdentityToken", token.trim()),
            ];
            let body = encode_form(&form);
            let request = self
                .sts
                .post(self.sts_url()?)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            return self
                .sts_keys(request, &format!("web identity for {role}"))
                .await;
        }
        Err(format!(
            "sigv4: no AWS credentials: set `access_key` with `secret_key_file`, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile `{profile}` in the shared credentials file, or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (an EKS service account)"
        ))
    }

    fn sts_url(&self) -> Result<reqwest::Url, String> {
        let url = env("AWS_ENDPOINT_URL_STS")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com/", self.region));
        reqwest::Url::parse(&url).map_err(|e| format!("sigv4: STS endpoint `{url}`: {e}"))
    }

    /// `role` assumed with `base` (a request to STS signed with them).
    async fn assume_role(&self, base: &Keys, role: &str) -> Result<Keys, String> {
        let url = self.sts_url()?;
        let body = encode_form(&[
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", role),
            ("RoleSessionName", SESSION_NAME),
        ]);
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let scope = Scope {
            method: "POST",
            service: "sts",
            region: &self.region,
            at: SystemTime::now(),
        };
        let signed = signed_headers(base, &scope, &url, &headers, body.as_bytes())?;
        let mut request = self.sts.post(url).headers(headers).body(body);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        self.sts_keys(request, &format!("role {role}")).await
    }

    async fn sts_keys(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Keys, String> {
        let response = request
            .send()
            .await
            .map_err(|e| format!("sigv4: STS for {what}: {}", crate::outgoing::error_text(&e)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let code = xml_value(&text, "Code").unwrap_or_default();
            let message = xml_value(&text, "Message").unwrap_or_default();
            return Err(format!(
                "sigv4: STS refused {what}: HTTP {} {code} {message}",
                status.as_u16()
            ));
        }
        let field = |name: &str| {
            xml_value(&text, name)
                .ok_or_else(|| format!("sigv4: STS answer for {what} lacks {name}"))
        };
        let expires = xml_value(&text, "Expiration")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(SystemTime::from);
        Ok(Keys {
            access_key: field("AccessKeyId")?,
            secret: field("SecretAccessKey")?.into(),
            token: Some(field("SessionToken")?.into()),
            expires,
            source: format!("STS ({what})"),
        })
    }
}

fn read_secret_file(file: &Path) -> Result<SecretString, String> {
    crate::config::SecretSource::File(file.to_owned())
        .read()
        .map_err(|e| format!("sigv4.secret_key_file: {e}"))
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// The text of the first `<name>` element of an XML answer.
fn xml_value(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].trim().to_owned())
}

/// The keys of `profile` in a shared credentials file (INI).
fn profile_keys(text: &str, profile: &str, file: &Path) -> Option<Keys> {
    let mut in_profile = false;
    let (mut access_key, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().to_owned();
            match key.trim() {
                "aws_access_key_id" => access_key = Some(value),
                "aws_secret_access_key" => secret = Some(value),
                "aws_session_token" => token = Some(value),
                _ => {}
            }
        }
    }
    Some(Keys {
        access_key: access_key?,
        secret: secret?.into(),
        token: token.map(SecretString::from),
        expires: None,
        source: format!("profile {profile} of {}", file.display()),
    })
}

/// What a signature is for.
struct Scope<'a> {
    method: &'a str,
    service: &'a str,
    region: &'a str,
    at: SystemTime,
}

/// The headers that sign a request to `url` with `headers` (every one of
/// them signed, `host` added) and `body`.
fn signed_headers(
    keys: &Keys,
    scope: &Scope<'_>,
    url: &reqwest::Url,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let identity: Identity = Credentials::new(
        keys.access_key.clone(),
        keys.secret.expose_secret().to_owned(),
        keys.token.as_ref().map(|t| t.expose_secret().to_owned()),
        keys.expires,
        "cmu-exporter",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("sigv4: {e}"))?
        .into();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        scope.method,
        url.as_str(),
        pairs.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("sigv4: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("sigv4 ({}): {e}", keys.source))?
        .into_parts();
    let mut out = Vec::new();
    for (name, value) in instructions.headers() {
        let mut value =
            HeaderValue::from_str(value).map_err(|_| "sigv4: a header value".to_owned())?;
        if name.eq_ignore_ascii_case("authorization")
            || name.eq_ignore_ascii_case("x-amz-security-token")
        {
            value.set_sensitive(true);
        }
        out.push((
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| "sigv4: a header name".to_owned())?,
            value,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example of a signed request (the Signature Version 4
    /// documentation's IAM `ListUsers` example, the test suite's key).
    /// The `Authorization` header among `signed`.
    fn authorization(signed: &[(HeaderName, HeaderValue)]) -> String {
        signed
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_published_example_signs_to_its_published_signature() {
        let keys = Keys {
            access_key: "AKIDEXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned().into(),
            token: None,
            expires: None,
            source: "test".into(),
        };
        let scope = Scope {
            method: "GET",
            service: "iam",
            region: "us-east-1",
            at: "2015-08-30T12:36:00Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .into(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let url =
            reqwest::Url::parse("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08")
                .unwrap();
        let signed = signed_headers(&keys, &scope, &url, &headers, b"").unwrap();
        assert!(
            authorization(&signed).ends_with(
                "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            ),
            "{}",
            authorization(&signed)
        );
    }

    #[test]
    fn a_post_to_the_store_is_signed_for_aps_with_every_header() {
        let keys = Keys {
            access_key: "AKIDEXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned().into(),
            token: Some("session-token".to_owned().into()),
            expires: None,
            source: "test".into(),
        };
        let mut headers = HeaderMap::new();
        headers.insert("content-encoding", HeaderValue::from_static("snappy"));
        let url = reqwest::Url::parse(
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
        )
        .unwrap();
        let scope = Scope {
            method: "POST",
            service: SERVICE,
            region: "eu-west-1",
            at: SystemTime::now(),
        };
        let signed = signed_headers(&keys, &scope, &url, &headers, b"body").unwrap();
        let auth = authorization(&signed);
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/aps/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=content-encoding;host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert!(signed.iter().any(|(n, _)| n == "x-amz-security-token"));
        assert!(!format!("{keys:?}").contains("EXAMPLEKEY"));
    }

    #[test]
    fn a_profile_is_read_from_the_shared_credentials_file() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = S\n\n[prod]\naws_access_key_id=P\naws_secret_access_key=Q\naws_session_token=T\n";
        let file = Path::new("/x/credentials");
        let prod = profile_keys(text, "prod", file).unwrap();
        assert_eq!(prod.access_key, "P");
        assert_eq!(prod.secret.expose_secret(), "Q");
        assert!(prod.token.is_some());
        assert_eq!(profile_keys(text, "default", file).unwrap().access_key, "A");
        assert!(profile_keys(text, "other", file).is_none());
        assert_eq!(
            xml_value("<a><AccessKeyId> K </AccessKeyId></a>", "AccessKeyId").as_deref(),
            Some("K")
        );
    }
}
