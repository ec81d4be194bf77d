//! What a valid configuration will do, in words (`check-config`).

use super::Config;
use crate::report::{BucketChoice, ReportApi};

impl Config {
    /// A readable account of what this configuration will do.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("DCR server:        {}\n", self.adobe.dcr_url));
        // The default API always, the others when a report reads them.
        let used = |api: ReportApi| api.is_default() || self.reports.iter().any(|r| r.api == api);
        for (api, url) in self.adobe.urls.iter().filter(|(api, _)| used(*api)) {
            out.push_str(&format!("{:<19}{url}\n", format!("{api} base:")));
        }
        for account in &self.accounts {
            let who = account
                .label()
                .map_or(String::new(), |n| format!("account {n}: "));
            out.push_str(&format!(
                "{who}software statement: {}\n",
                account.software_statement.origin()
            ));
            if let Some(client) = &account.client {
                out.push_str(&format!(
                    "{who}client credentials: pre-registered (id from {}, secret from {}): never registers\n",
                    client.id.origin(),
                    client.secret.origin()
                ));
            }
        }
        for (api, zone) in self.adobe.time_zones.iter().filter(|(api, _)| used(*api)) {
            let label = if api.is_default() {
                "bucket time zone:".to_owned()
            } else {
                format!("{api} time zone:")
            };
            let name = zone.iana_name().unwrap_or("fixed offset");
            out.push_str(&format!("{label:<19}{name}\n"));
        }
        out.push_str(&format!(
            "state directory:   {}\n",
            self.state_dir.display()
        ));
        for remote in &self.remote_write {
            out.push_str(&remote.explain());
        }
        out.push_str("thresholds (exported as cmu_threshold, cmu_stream_limit):\n");
        out.push_str(&self.thresholds.explain());
        out.push_str(&format!("{} report(s):\n", self.reports.len()));
        for r in &self.reports {
            let account = r
                .account
                .as_ref()
                .map_or(String::new(), |a| format!(" [account {a}]"));
            let api = if r.api.is_default() {
                String::new()
            } else {
                format!(" {}", r.api)
            };
            out.push_str(&format!(
                "  {}{account}:{api} /{} ({} buckets, {} bucket exported), every {}, limit {}\n",
                r.name,
                r.path,
                r.path.granularity().as_str(),
                match r.bucket {
                    BucketChoice::Complete => "newest complete",
                    BucketChoice::Partial => "current partial",
                },
                humantime::format_duration(r.interval),
                r.limit
            ));
        }
        out
    }
}
