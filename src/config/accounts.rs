//! The `accounts:` section, or the single account of the `adobe:` keys.

use std::collections::HashSet;

use super::raw::RawAccount;
use super::{
    AccountConfig, AccountName, CLIENT_ID_ENV, CLIENT_SECRET_ENV, ClientSource, STATEMENT_ENV,
    SecretSource, SecretsInEnv,
};

/// The accounts: the `accounts:` listed, or one unnamed account from the
/// `adobe` keys (`single`) when none is.
pub(super) fn validate(
    single: RawAccount,
    listed: Vec<RawAccount>,
    env: &SecretsInEnv,
    problems: &mut Vec<String>,
) -> Vec<AccountConfig> {
    if listed.is_empty() {
        return validate_credentials("adobe", single, Some(env), problems)
            .map(|(software_statement, client)| AccountConfig {
                name: None,
                software_statement,
                client,
            })
            .into_iter()
            .collect();
    }
    for (key, set) in [
        (
            "software_statement_file",
            single.software_statement_file.is_some(),
        ),
        ("client_id_file", single.client_id_file.is_some()),
        ("client_secret_file", single.client_secret_file.is_some()),
    ] {
        if set {
            problems.push(format!(
                "adobe.{key}: set while `accounts:` is listed: each account names its own, so move it under its account"
            ));
        }
    }
    let mut names = HashSet::new();
    let mut accounts = Vec::new();
    for (i, raw) in listed.into_iter().enumerate() {
        let key = format!("accounts[{i}]");
        let name = match AccountName::parse(&raw.name) {
            Ok(name) => Some(name),
            Err(e) => {
                problems.push(format!("{key}.name: {e}"));
                None
            }
        };
        if !names.insert(raw.name.clone()) {
            problems.push(format!(
                "{key}.name: `{}` is used by an earlier account: give each account its own name",
                raw.name
            ));
        }
        let credentials = validate_credentials(&key, raw, None, problems);
        if let (Some(name), Some((software_statement, client))) = (name, credentials) {
            accounts.push(AccountConfig {
                name: Some(name),
                software_statement,
                client,
            });
        }
    }
    accounts
}

/// An account's statement and optional client credentials, under `key`
/// (`adobe` or `accounts[i]`). Only the single account may take them from
/// the environment (`env`: which of its variables are set).
fn validate_credentials(
    key: &str,
    raw: RawAccount,
    env: Option<&SecretsInEnv>,
    problems: &mut Vec<String>,
) -> Option<(SecretSource, Option<ClientSource>)> {
    let from_env = env.is_some();
    let set = env.cloned().unwrap_or_default();
    let id = raw
        .client_id_file
        .map(SecretSource::File)
        .or_else(|| set.client_id.then_some(SecretSource::Env(CLIENT_ID_ENV)));
    let secret = raw.client_secret_file.map(SecretSource::File).or_else(|| {
        set.client_secret
            .then_some(SecretSource::Env(CLIENT_SECRET_ENV))
    });
    let client = match (id, secret) {
        (Some(id), Some(secret)) => Some(ClientSource { id, secret }),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            problems.push(format!(
                "{key}.client_id_file / {key}.client_secret_file: only one is set: give both{}, or neither to let the exporter register",
                if from_env { format!(" (or {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV})") } else { String::new() }
            ));
            None
        }
    };
    let software_statement = match raw.software_statement_file {
        Some(p) if p.as_os_str().is_empty() => {
            problems.push(format!("{key}.software_statement_file: empty: name the file downloaded from the TVE Dashboard"));
            None
        }
        Some(p) => Some(SecretSource::File(p)),
        None if set.statement => Some(SecretSource::Env(STATEMENT_ENV)),
        // With pre-registered credentials the statement is only used to show the application.
        None if client.is_some() => Some(SecretSource::Env(STATEMENT_ENV)),
        None => {
            problems.push(format!(
                "{key}.software_statement_file: missing: name the software statement file downloaded from the TVE Dashboard{}",
                if from_env { format!(", or set {STATEMENT_ENV}") } else { String::new() }
            ));
            None
        }
    };
    Some((software_statement?, client))
}
