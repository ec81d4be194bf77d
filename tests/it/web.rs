//! The exporter's web server as a client sees it: several listen addresses,
//! TLS with client certificates, basic auth, and slow or oversized requests.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use cmu_exporter::app::{self, Options, Running};
use cmu_exporter::clock::Clock;
use cmu_exporter::config::Config;
use cmu_exporter::incoming::{ConnectionLimits, WebConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REPORT: &str = "  - name: daily\n    path: tenant/year/month/day\n    interval: 1h\n";

async fn start(config: &Path, listen: usize, web: WebConfig) -> Running {
    let options = Options {
        listen: vec!["127.0.0.1:0".parse().unwrap(); listen],
        config_file: Some(config.to_owned()),
        web,
        ..Options::loopback(Clock::wall())
    };
    app::start(Config::load(config).unwrap(), options)
        .await
        .expect("exporter starts")
}

#[tokio::test]
async fn every_listen_address_serves_the_same_metrics() {
    let (_sim, _dir, config) = simulator_and_config(REPORT).await;
    let exporter = start(
        &config,
        2,
        WebConfig::plain(ConnectionLimits::with_read_header_timeout(
            Duration::from_secs(10),
        )),
    )
    .await;
    assert_eq!(exporter.addrs.len(), 2);
    assert_ne!(exporter.addrs[0], exporter.addrs[1]);
    for addr in &exporter.addrs {
        let base = format!("http://{addr}");
        wait_for_value(
            "the report on every address",
            WAIT,
            &base,
            "cmu_exporter_report_up{report=\"daily\"}",
            1.0,
        )
        .await;
    }
    exporter.stop().await;
}

fn client(pki: &Pki, identity: Option<&str>) -> reqwest::Client {
    let mut builder =
        http_builder().tls_certs_only([reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap()]);
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn tls_with_client_certificates_and_basic_auth_admit_only_the_right_client() {
    let (sim, dir, config) = simulator_and_config(REPORT).await;
    let pki = make_pki("ours");
    let rogue = make_pki("rogue");
    let files = dir.path();
    std::fs::write(files.join("server.crt"), &pki.server_cert).unwrap();
    std::fs::write(files.join("server.key"), &pki.server_key).unwrap();
    std::fs::write(files.join("clients-ca.crt"), &pki.ca).unwrap();
    let hash = bcrypt::hash("right horse", 4).unwrap();
    let web_file = files.join("web.yml");
    std::fs::write(
        &web_file,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: clients-ca.crt\n  client_auth_type: RequireAndVerifyClientCert\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
    )
    .unwrap();
    let web = WebConfig::load(&web_file, ConnectionLimits::default()).expect("valid web config");
    assert!(web.is_tls());
    let exporter = start(&config, 1, web).await;
    let url = format!("https://127.0.0.1:{}/metrics", exporter.addrs[0].port());
    let good = client(&pki, Some(&pki.client));

    let scrape = |client: reqwest::Client, user: &'static str, password: &'static str| {
        let url = url.clone();
        async move {
            client
                .get(&url)
                .basic_auth(user, Some(password))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };
    wait_for("a scrape with the report", WAIT, || async {
        let r = good
            .get(&url)
            .basic_auth("prometheus", Some("right horse"))
            .send()
            .await
            .ok()?;
        let text = r.text().await.ok()?;
        text.contains("cmu_active_users{report=\"daily\"")
            .then_some(())
    })
    .await;
    assert_eq!(
        scrape(good.clone(), "prometheus", "right horse")
            .await
            .unwrap(),
        200
    );
    assert_eq!(
        scrape(good.clone(), "prometheus", "wrong").await.unwrap(),
        401
    );
    assert_eq!(
        scrape(good.clone(), "nobody", "right horse").await.unwrap(),
        401
    );
    let anonymous = good.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let health = good
        .get(url.replace("/metrics", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "liveness needs no password");

    // Without a client certificate, or with one from another CA, no TLS session.
    assert!(
        scrape(client(&pki, None), "prometheus", "right horse")
            .await
            .is_err()
    );
    assert!(
        scrape(
            client(&pki, Some(&rogue.client)),
            "prometheus",
            "right horse"
        )
        .await
        .is_err()
    );
    // Plain HTTP on the TLS port gets no page.
    let plain = http()
        .get(url.replace("https://", "http://"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(
        plain.is_err() || plain.as_ref().is_ok_and(|s| *s != 200),
        "{plain:?}"
    );
    exporter.stop().await;
    drop(sim);
}

/// Opens a connection that sends a request's first bytes one per `pace`.
async fn slow_client(addr: std::net::SocketAddr, pace: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.split();
    let request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n\r\n";
    let dribble = async {
        for byte in request {
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(pace).await;
        }
        std::future::pending::<()>().await;
    };
    let mut answer = Vec::new();
    tokio::select! {
        () = dribble => unreachable!(),
        _ = read.read_to_end(&mut answer) => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => panic!("the slow client was never cut off"),
    }
    (started.elapsed(), answer)
}

#[tokio::test]
async fn a_client_sending_headers_byte_by_byte_is_cut_off_and_others_are_served() {
    let (_sim, _dir, config) = simulator_and_config(REPORT).await;
    let exporter = start(
        &config,
        1,
        WebConfig::plain(ConnectionLimits::with_read_header_timeout(
            Duration::from_secs(2),
        )),
    )
    .await;
    let addr = exporter.addrs[0];
    let base = exporter.url();
    wait_for("the report", WAIT, || async {
        metric_value(&base, "cmu_exporter_report_up{report=\"daily\"}")
            .await
            .map(|_| ())
    })
    .await;
    let slow: Vec<_> = (0..50)
        .map(|_| tokio::spawn(slow_client(addr, Duration::from_secs(1))))
        .collect();
    // While they dribble, scrapes are answered in full.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..10 {
        let (status, text) = get_text(&format!("{base}/metrics")).await;
        assert_eq!(status, 200);
        assert!(text.contains("cmu_exporter_report_up{report=\"daily\"} 1"));
    }
    for handle in slow {
        let (took, answer) = handle.await.unwrap();
        // Cut at the 2 s header deadline, long before the 70 bytes at 1/s were sent.
        assert!(took < Duration::from_secs(10), "cut off after {took:?}");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            !answer.contains("200 OK"),
            "no page for a slow client: {answer}"
        );
    }
    exporter.stop().await;
}

#[tokio::test]
async fn oversized_request_headers_are_refused() {
    let (_sim, _dir, config) = simulator_and_config(REPORT).await;
    let exporter = start(
        &config,
        1,
        WebConfig::plain(ConnectionLimits::with_read_header_timeout(
            Duration::from_secs(10),
        )),
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(exporter.addrs[0])
        .await
        .unwrap();
    let huge = "x".repeat(64 * 1024);
    let request = format!("GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: {huge}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert!(!answer.contains("200 OK"));
    // And the server still serves normal requests.
    assert_eq!(
        get_text(&format!("{}/healthz", exporter.url())).await.0,
        200
    );
    exporter.stop().await;
}

/// A report of about 10,000 series, and the exporter as its own process
/// (to read its memory) with tight connection limits.
async fn big_exporter(
    max_connections: usize,
) -> (
    cmu_exporter::simulator::Simulator,
    tempfile::TempDir,
    Process,
) {
    let (sim, dir, config) = simulator_and_config_with(
        cmu_exporter::simulator::SimulatorConfig {
            scale: 10,
            ..Default::default()
        },
        "  - name: big\n    path: tenant/year/month/day/hour/mvpd/platform/application-id/application\n    bucket: partial\n    interval: 1h\n",
    )
    .await;
    let exporter = spawn_binary(
        &config,
        &[
            "--web.max-connections",
            &max_connections.to_string(),
            "--web.write-timeout",
            "2s",
            "--web.read-header-timeout",
            "2s",
        ],
        &[],
    );
    let up = "cmu_exporter_report_up{report=\"big\"}";
    wait_for_value("the big report", WAIT, &exporter.base, up, 1.0).await;
    (sim, dir, exporter)
}

/// Sends a scrape request on a new connection and never reads the answer.
async fn never_reads(addr: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_abuse_is_bounded_and_others_are_served() {
    let (_sim, _dir, exporter) = big_exporter(250).await;
    let base = exporter.base.clone();
    let addr = base.trim_start_matches("http://").to_owned();
    let (_, page) = get_text(&format!("{base}/metrics")).await;
    assert!(page.len() > 1 << 20, "a page of {} bytes", page.len());

    // 200 concurrent scrapes, each on its own connection: all answered in full.
    let client = http_builder().pool_max_idle_per_host(0).build().unwrap();
    let scrapes: Vec<_> = (0..200)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/metrics"));
            tokio::spawn(async move {
                let answer = client.get(url).send().await.unwrap();
                (
                    answer.status().as_u16(),
                    answer.bytes().await.unwrap().len(),
                )
            })
        })
        .collect();
    for scrape in scrapes {
        let (status, len) = scrape.await.unwrap();
        assert_eq!(status, 200);
        assert!(len > 1 << 20, "a whole page: {len} bytes");
    }

    // Readers that never read: the others are served meanwhile, and the
    // stalled answers are given up after the write timeout.
    let mut stalled = Vec::new();
    for _ in 0..30 {
        stalled.push(never_reads(&addr).await);
    }
    for _ in 0..10 {
        let (status, text) = get_text(&format!("{base}/metrics")).await;
        assert_eq!(status, 200);
        assert_eq!(text.len(), page.len());
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for mut stream in stalled {
        let mut got = Vec::new();
        let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "the server closed the stalled connection");
        assert!(
            got.len() < page.len(),
            "the stalled answer was cut: {} bytes",
            got.len()
        );
    }

    // Connections over the limit are refused at once, not queued.
    let mut idle = Vec::new();
    for _ in 0..250 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..20 {
        let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = extra
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(WAIT, extra.read_to_end(&mut got)).await;
        assert!(
            got.is_empty(),
            "no answer over the limit: {}",
            String::from_utf8_lossy(&got[..got.len().min(80)])
        );
    }
    drop(idle);
    // Once the idle ones are gone, scrapes are served again and the refusals show.
    let refused = wait_for("the refusals counted", WAIT, || async {
        metric_value(&base, "cmu_exporter_http_connections_refused_total")
            .await
            .filter(|n| *n >= 20.0)
    })
    .await;
    assert!(refused >= 20.0);
    let peak = peak_rss(exporter.child.id());
    println!(
        "scrape abuse: page {} KiB, peak resident memory {} MiB",
        page.len() >> 10,
        peak >> 20
    );
    assert!(peak < 200 << 20, "peak memory {} MiB", peak >> 20);
    let (status, log) = exporter.stop();
    assert!(status.success(), "{log}");
    assert_eq!(
        log.matches("connection refused").count(),
        1,
        "one warning for a flood of refusals:\n{log}"
    );
}
