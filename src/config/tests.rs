use super::*;

const GOOD: &str = "
adobe:
  software_statement_file: /etc/cmu-exporter/software-statement.jwt
state_dir: /var/lib/cmu-exporter
reports:
  - name: hourly_by_mvpd
    path: tenant/year/month/day/hour/mvpd
  - name: monthly_levels
    path: year/month/concurrency-level/tenant
  - name: daily
    path: /tenant/year/month/day/
    interval: 30m
    bucket: partial
";

#[test]
fn good_config_gets_defaults_from_the_recompute_schedule() {
    let c = Config::from_yaml(GOOD, "test").unwrap();
    assert_eq!(c.adobe.dcr_url.as_str(), "https://api.auth.adobe.com/");
    for api in ReportApi::ALL {
        assert_eq!(
            c.adobe.urls[api].as_str().trim_end_matches('/'),
            api.profile().default_url
        );
    }
    assert_eq!(c.reports[0].interval, Duration::from_secs(3600));
    assert_eq!(c.reports[1].interval, Duration::from_secs(86400));
    assert_eq!(c.reports[2].interval, Duration::from_secs(1800));
    assert_eq!(c.reports[2].path.to_string(), "tenant/year/month/day");
    assert_eq!(c.reports[2].bucket, BucketChoice::Partial);
    // An hour bucket, Adobe's hourly computation, three intervals.
    assert_eq!(c.reports[0].max_age, Duration::from_secs(5 * 3600));
    // A chosen interval of 30 min on a day: 25 h, Adobe's 3 h, 1 h 30 min.
    assert_eq!(
        c.reports[2].max_age,
        Duration::from_secs(25 * 3600 + 3 * 3600 + 5400)
    );
    assert_eq!(c.adobe.max_concurrent_requests, 2);
}

#[test]
fn report_options_are_validated() {
    let yaml = "
adobe:
  software_statement_file: /s.jwt
state_dir: /x
reports:
  - name: ok
    path: tenant/year/month/day/mvpd
    filters: [\"mvpd=DTV\", \"mvpd=Cox\", \"platform!=Roku\"]
    metrics: [active-users]
    labels: {team: tv}
    max_series: 100
    max_age: 12h
";
    let c = Config::from_yaml(yaml, "t").unwrap();
    let r = &c.reports[0];
    assert_eq!(
        r.filters[2],
        Filter {
            dimension: "platform".into(),
            value: "Roku".into(),
            negated: true
        }
    );
    assert_eq!(r.labels, vec![("team".into(), "tv".into())]);
    assert_eq!(
        (r.max_series, r.max_age),
        (Some(100), Duration::from_secs(12 * 3600))
    );
    let bad = yaml
        .replace("\"mvpd=DTV\"", "\"day=3\"")
        .replace("team: tv", "mvpd: x")
        .replace("max_age: 12h", "max_age: 1m");
    let err = Config::from_yaml(&bad, "t").unwrap_err().to_string();
    assert!(
        err.contains("reports[0].filters: `day=3`: time dimensions cannot be filtered"),
        "{err}"
    );
    assert!(
        err.contains("reports[0].labels: `mvpd`: the exporter already uses this label"),
        "{err}"
    );
    assert!(
        err.contains("reports[0].max_age: `1m` is shorter than the interval"),
        "{err}"
    );
}

#[test]
fn every_problem_names_key_value_and_fix() {
    let bad = "
adobe:
  cmu_url: mgmt.auth.adobe.com
  software_statement_file: /x.jwt
  time_zone: Mars/Olympus
  proxy_url: proxy:3128
  ca_file: /nonexistent/ca.pem
reports:
  - name: Hourly
    path: tenant/year/day
    interval: 5 parsecs
  - name: ok
    path: tenant/year
  - name: ok
    path: tenant/year
";
    let err = Config::from_yaml(bad, "test").unwrap_err();
    let text = err.to_string();
    for needle in [
        "adobe.cmu_url: `mgmt.auth.adobe.com` is not an http(s) URL",
        "adobe.time_zone: `Mars/Olympus`",
        "adobe.proxy_url: `proxy:3128` is not a proxy URL",
        "adobe.ca_file: /nonexistent/ca.pem is not a readable file",
        "state_dir: missing",
        "reports[0].name: `Hourly` is not a report name",
        "reports[0].path: `tenant/year/day`: time dimensions",
        "reports[0].interval: `5 parsecs` is not a duration",
        "reports[2].name: `ok` is used by an earlier report",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn unknown_keys_and_empty_files_are_explained() {
    let err = Config::from_yaml("state_dir: /x\nreprots: []\n", "f.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `reprots`"), "{err}");
    let err = Config::from_yaml("  \n", "f.yaml").unwrap_err().to_string();
    assert!(err.contains("f.yaml is empty"), "{err}");
}

#[test]
fn several_accounts_each_with_their_reports() {
    let yaml = "
adobe:
  dcr_url: https://api.auth.adobe.com
  cmu_url: https://mgmt.auth.adobe.com/cmu/v2
accounts:
  - name: acme
    software_statement_file: /etc/cmu-exporter/acme.jwt
  - name: globex
    software_statement_file: /etc/cmu-exporter/globex.jwt
    client_id_file: /etc/cmu-exporter/globex.id
    client_secret_file: /etc/cmu-exporter/globex.secret
state_dir: /var/lib/cmu-exporter
reports:
  - name: acme_hourly
    account: acme
    path: tenant/year/month/day/hour/mvpd
  - name: globex_daily
    account: globex
    path: tenant/year/month/day
";
    let c = Config::from_yaml(yaml, "t").unwrap();
    let names: Vec<_> = c.accounts.iter().map(|a| a.label()).collect();
    assert_eq!(names, [Some("acme"), Some("globex")]);
    assert!(c.accounts[1].client.is_some());
    assert_eq!(c.reports[0].account.as_ref().unwrap().as_str(), "acme");
    assert_eq!(
        c.accounts[0].state_dir(&c.state_dir),
        PathBuf::from("/var/lib/cmu-exporter/accounts/acme")
    );
    let single = Config::from_yaml(GOOD, "t").unwrap();
    assert_eq!(single.accounts.len(), 1);
    assert_eq!(single.accounts[0].label(), None);
    assert_eq!(
        single.accounts[0].state_dir(&single.state_dir),
        single.state_dir
    );

    let bad = yaml
        .replace("    account: globex\n", "")
        .replace("account: acme", "account: initech")
        .replace("- name: globex", "- name: Globex")
        .replace(
            "  cmu_url:",
            "  software_statement_file: /x.jwt\n  cmu_url:",
        );
    let err = Config::from_yaml(&bad, "t").unwrap_err().to_string();
    for needle in [
        "adobe.software_statement_file: set while `accounts:` is listed",
        "accounts[1].name: `Globex` is not an account name",
        "reports[0].account: `initech` is not a listed account: use one of acme",
        "reports[1].account: missing: with `accounts:` listed",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let stray = GOOD.replace(
        "  - name: hourly_by_mvpd\n",
        "  - name: hourly_by_mvpd\n    account: acme\n",
    );
    let err = Config::from_yaml(&stray, "t").unwrap_err().to_string();
    assert!(
        err.contains("reports[0].account: `acme` names an account, but no `accounts:` are listed"),
        "{err}"
    );
}

/// Each API's own keys (its profile's `url_key` and `time_zone_key`) are
/// read from the file: a profile whose keys the file mirror lacks would
/// silently get its defaults.
#[test]
fn every_api_profile_has_its_keys_in_the_file() {
    for api in ReportApi::ALL {
        let profile = api.profile();
        let yaml = format!(
            "adobe:\n  software_statement_file: /x.jwt\n  {}: https://{}.example.test/base\n  {}: Asia/Tokyo\nstate_dir: /tmp/x\nreports:\n  - name: r\n    path: year\n",
            profile.url_key, profile.name, profile.time_zone_key
        );
        let c = Config::from_yaml(&yaml, "test").unwrap();
        assert_eq!(
            c.adobe.urls[api].as_str(),
            format!("https://{}.example.test/base", profile.name)
        );
        assert_eq!(c.adobe.time_zones[api].iana_name(), Some("Asia/Tokyo"));
        for other in ReportApi::ALL.into_iter().filter(|o| *o != api) {
            assert_eq!(
                c.adobe.urls[other].as_str().trim_end_matches('/'),
                other.profile().default_url
            );
        }
    }
}

/// `from_yaml` reads nothing from the environment: a statement given
/// only by `CMU_SOFTWARE_STATEMENT` counts when the edge says it is set.
#[test]
fn the_environment_is_an_argument_not_a_lookup() {
    let yaml = "state_dir: /tmp/x\nreports:\n  - name: r\n    path: year\n";
    let error = Config::from_yaml(yaml, "test").unwrap_err().to_string();
    assert!(
        error.contains("software_statement_file: missing"),
        "{error}"
    );
    let env = SecretsInEnv {
        statement: true,
        ..SecretsInEnv::default()
    };
    let c = Config::from_yaml_in(yaml, "test", &env).unwrap();
    assert_eq!(
        c.accounts[0].software_statement,
        SecretSource::Env(STATEMENT_ENV)
    );
}

#[test]
fn remote_write_takes_prometheus_keys_with_defaults_like_a_scrape() {
    let yaml = format!(
        "{GOOD}remote_write:
  - url: http://prometheus:9090/api/v1/write
  - url: https://mimir.example/api/v1/push
    name: mimir
    remote_timeout: 10s
    headers:
      X-Scope-OrgID: tenant-1
    authorization:
      credentials_file: /run/secrets/mimir-token
    tls_config:
      ca_file: /etc/tls/ca.pem
      cert_file: /etc/tls/client.pem
      key_file: /etc/tls/client.key
      server_name: mimir.internal
    external_labels:
      job: cmu
      cluster: eu-1
    max_gap: 6h
    self_metrics_interval: 30s
"
    );
    let c = Config::from_yaml(&yaml, "test").unwrap();
    let [prometheus, mimir] = &c.remote_write[..] else {
        panic!("two remotes: {:?}", c.remote_write);
    };
    assert_eq!(prometheus.name, "prometheus_9090");
    assert_eq!(prometheus.remote_timeout, Duration::from_secs(30));
    assert_eq!(prometheus.max_gap, Duration::from_secs(24 * 3600));
    assert_eq!(prometheus.self_metrics_interval, Duration::from_secs(60));
    assert_eq!(
        prometheus.labels("host:9063"),
        vec![
            ("instance".to_owned(), "host:9063".to_owned()),
            ("job".to_owned(), "cmu-exporter".to_owned())
        ]
    );
    assert_eq!(mimir.remote_timeout, Duration::from_secs(10));
    assert_eq!(
        mimir.headers,
        vec![("X-Scope-OrgID".to_owned(), "tenant-1".to_owned())]
    );
    assert_eq!(
        mimir.auth,
        Some(RemoteAuth::Authorization {
            kind: "Bearer".into(),
            credentials_file: "/run/secrets/mimir-token".into()
        })
    );
    assert_eq!(mimir.tls.server_name.as_deref(), Some("mimir.internal"));
    assert_eq!(
        mimir.labels("host:9063"),
        vec![
            ("cluster".to_owned(), "eu-1".to_owned()),
            ("instance".to_owned(), "host:9063".to_owned()),
            ("job".to_owned(), "cmu".to_owned())
        ],
        "a given job is kept, instance added"
    );
    assert_eq!(mimir.max_gap, Duration::from_secs(6 * 3600));
    let told = c.explain();
    assert!(
        told.contains("remote_write mimir: https://mimir.example/api/v1/push"),
        "{told}"
    );
    assert!(
        told.contains("headers X-Scope-OrgID;") && !told.contains("tenant-1"),
        "{told}"
    );
}
