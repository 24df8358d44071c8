//! The control API through the real binary: a channel registered over HTTP
//! runs (datums in, Avro out), survives a restart of the relay (durable
//! registry), shows in /metrics, and stops when deleted; relay.yaml channels
//! cannot be deleted through the API.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use integration_tests::datum::send_to_loopback;
use integration_tests::http::request;
use integration_tests::netns::{loopback_host, Netns};
use integration_tests::relay::{channel_stats, example_schema_path, read_avro_independently, tempdir, wait_for, RelayProcess};
use serde_json::json;

const API: &str = "127.0.0.1:8080";

fn api(ns: &Netns, method: &'static str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let path = path.to_string();
    let addr: SocketAddr = API.parse().unwrap();
    ns.spawn(move || request(addr, method, &path, body.as_ref())).join().unwrap()
}

fn start(ns: &Netns, root: &Path, log: &str) -> RelayProcess {
    let cfg = root.join("config");
    let r = RelayProcess::start(ns, &["run", "--mode", "socket", "--api", API, "--config", cfg.to_str().unwrap()], root.join(log));
    wait_for("the control API", Duration::from_secs(10), || {
        let addr: SocketAddr = API.parse().unwrap();
        ns.spawn(move || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()).join().unwrap()
    });
    r
}

#[test]
fn registered_channel_runs_persists_and_is_removed() {
    let ns = loopback_host("api");
    let dir = tempdir();
    let cfg = dir.path().join("config");
    std::fs::create_dir_all(cfg.join("agents")).unwrap();
    std::fs::copy(example_schema_path(), cfg.join("agents/example.avsc")).unwrap();
    std::fs::write(cfg.join("relay.yaml"), "channels:\n  - name: base\n    port: 26000\n    schema: config/agents/example.avsc\n").unwrap();
    std::fs::write(cfg.join("global.yaml"), "storage:\n  avro_path: ./data\n").unwrap();
    let data = dir.path().join("data");

    let relay = start(&ns, dir.path(), "relay1.log");
    let (code, health) = api(&ns, "GET", "/api/v1/health", None);
    assert_eq!(code, 200, "{health}");

    // Register a channel with SpeedData's request shape and a schema path.
    let body = json!({"name": "probe", "port": 26010, "schema": "config/agents/example.avsc",
                      "config": {"decimation": {"factor": 5}, "rotation": {"mode": "size", "threshold": 1000000}}});
    let (code, reply) = api(&ns, "POST", "/api/v1/channels", Some(body.clone()));
    assert_eq!(code, 201, "{reply}");
    // The same name or port again: 409; a multicast output port: 400.
    assert_eq!(api(&ns, "POST", "/api/v1/channels", Some(body)).0, 409);
    let (code, reply) = api(&ns, "POST", "/api/v1/channels", Some(json!({"name": "loop", "port": 6000, "schema": "config/agents/example.avsc"})));
    assert_eq!(code, 400, "{reply}");

    wait_for("probe to start", Duration::from_secs(10), || channel_stats(&data, "probe").is_some());
    send_to_loopback(&ns, 26010, 0..500, 1000);
    wait_for("probe to take 500", Duration::from_secs(10), || channel_stats(&data, "probe").is_some_and(|s| s["datagrams_in"] == 500));
    let (code, list) = api(&ns, "GET", "/api/v1/channels?status=active", None);
    assert_eq!(code, 200);
    let names: Vec<_> = list["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["base", "probe"]);
    let (code, stats) = api(&ns, "GET", "/api/v1/channels/probe/stats", None);
    assert_eq!(code, 200);
    assert_eq!(stats["stats"]["datagrams_in"], 500, "{stats}");
    // A relay.yaml channel is not the API's to delete.
    assert_eq!(api(&ns, "DELETE", "/api/v1/channels/base", None).0, 409);
    relay.stop();

    // Restarted: the registered channel is back, from the registry.
    let relay = start(&ns, dir.path(), "relay2.log");
    wait_for("probe to come back", Duration::from_secs(10), || {
        api(&ns, "GET", "/api/v1/channels/probe", None).0 == 200
            && channel_stats(&data, "probe").is_some_and(|s| s["datagrams_in"] == 0)
    });
    send_to_loopback(&ns, 26010, 500..800, 1000);
    wait_for("probe to take 300 more", Duration::from_secs(10), || channel_stats(&data, "probe").is_some_and(|s| s["datagrams_in"] == 300));
    let (_, metrics) = (0, ns.spawn(|| {
        let addr: SocketAddr = API.parse().unwrap();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::{Read, Write};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut t = String::new();
        s.read_to_string(&mut t).unwrap();
        t
    }).join().unwrap());
    assert!(metrics.contains("probe"), "{metrics}");

    // Deleted: stopped, files closed valid, and gone after another restart.
    let (code, reply) = api(&ns, "DELETE", "/api/v1/channels/probe", None);
    assert_eq!(code, 200, "{reply}");
    assert_eq!(api(&ns, "GET", "/api/v1/channels/probe", None).0, 404);
    assert_eq!(read_avro_independently(&data.join("probe")).len(), 800);
    relay.stop();
    let relay = start(&ns, dir.path(), "relay3.log");
    assert_eq!(api(&ns, "GET", "/api/v1/channels/probe", None).0, 404);
    relay.stop();
}
