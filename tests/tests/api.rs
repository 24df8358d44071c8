//! The control API over real HTTP on 127.0.0.1, with a fake supervisor
//! behind it: every endpoint, SpeedData's response shapes, and every error
//! code (400, 403, 404, 405, 409, 413, 415, 500).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use relay::api::{
    ChannelStatus, ChannelView, Control, ControlError, NewChannel, SchemaDirs, Source, MAX_BODY_BYTES,
};
use relay::channel::stats::ChannelStats;
use serde_json::{json, Value};

const SCHEMA: &str = r#"{"namespace": "test.sensor", "type": "record", "name": "data",
  "fields": [{"name": "time", "type": "long"}, {"name": "value", "type": "double"}]}"#;

// ---------------------------------------------------------------- the fake

/// An in-memory supervisor: one `relay.yaml` channel, `example` on 26000,
/// running with counters; channels added through the API start at once.
/// Names that make it misbehave: `explode` (cannot start), `racer` (loses a
/// race for its port), `stuck` (cannot be stopped). Port 6000 is a multicast
/// output port (refused as invalid).
#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<FakeState>>,
    dirs: SchemaDirs,
}

struct FakeState {
    channels: BTreeMap<String, ChannelView>,
    stats: BTreeMap<String, ChannelStats>,
    added: Vec<NewChannel>,
    removed: Vec<String>,
    next_pid: u32,
}

impl Fake {
    fn new(root: &Path) -> Fake {
        let mut example = view("example", 26000, SCHEMA, Source::Config);
        example.status = ChannelStatus::Active;
        example.pid = Some(100);
        example.restarts = 2;
        example.schema_path = Some(root.join("config/agents/example.avsc").display().to_string());
        let archive = root.join("data/example");
        std::fs::create_dir_all(&archive).unwrap();
        std::fs::write(archive.join("a.avro"), vec![0u8; 1000]).unwrap();
        example.storage_dir = Some(archive);
        let stats = ChannelStats {
            channel: "example".into(),
            pid: 100,
            input: "socket".into(),
            datagrams_in: 42,
            bytes_in: 4200,
            ..Default::default()
        };
        Fake {
            state: Arc::new(Mutex::new(FakeState {
                channels: BTreeMap::from([("example".into(), example)]),
                stats: BTreeMap::from([("example".into(), stats)]),
                added: Vec::new(),
                removed: Vec::new(),
                next_pid: 1000,
            })),
            dirs: SchemaDirs { bases: vec![root.to_path_buf(), root.join("config")], allowed: vec![root.join("config")] },
        }
    }

    fn added(&self) -> Vec<NewChannel> {
        self.state.lock().unwrap().added.clone()
    }

    fn removed(&self) -> Vec<String> {
        self.state.lock().unwrap().removed.clone()
    }

    /// Marks `name` as not running (as while its process waits to restart).
    fn stop(&self, name: &str) {
        let mut s = self.state.lock().unwrap();
        let v = s.channels.get_mut(name).unwrap();
        v.status = ChannelStatus::Registered;
        v.pid = None;
    }
}

fn view(name: &str, port: u16, schema_json: &str, source: Source) -> ChannelView {
    ChannelView {
        name: name.into(),
        port,
        schema_path: None,
        schema_json: schema_json.into(),
        status: ChannelStatus::Registered,
        pid: None,
        created_at: None,
        config: json!({}),
        source,
        restarts: 0,
        storage_dir: None,
    }
}

impl Control for Fake {
    fn channels(&self) -> Vec<ChannelView> {
        self.state.lock().unwrap().channels.values().cloned().collect()
    }

    async fn add(&self, req: NewChannel) -> Result<ChannelView, ControlError> {
        let mut s = self.state.lock().unwrap();
        match (req.name.as_str(), req.port) {
            (_, 6000) => return Err(ControlError::Invalid("port 6000 is the full-rate multicast output port".into())),
            ("explode", _) => return Err(ControlError::Failed("spawn failed: no such file".into())),
            ("racer", port) => return Err(ControlError::PortInUse { port, used_by: "faster".into() }),
            _ => {}
        }
        let mut v = view(&req.name, req.port, &req.schema_json, Source::Api);
        v.schema_path.clone_from(&req.schema_path);
        v.status = ChannelStatus::Active;
        v.pid = Some(s.next_pid);
        v.created_at = Some("2025-12-24T10:00:00Z".into());
        v.config = serde_json::to_value(&req.overrides).unwrap();
        s.next_pid += 1;
        s.channels.insert(req.name.clone(), v.clone());
        s.added.push(req);
        Ok(v)
    }

    async fn remove(&self, name: &str) -> Result<(), ControlError> {
        // Let the runtime run something else meanwhile, as the real one does.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut s = self.state.lock().unwrap();
        match s.channels.get(name).map(|c| c.source) {
            None => Err(ControlError::NotFound(name.into())),
            Some(Source::Config) => Err(ControlError::Conflict(format!(
                "channel \"{name}\" is defined in relay.yaml: remove it there and send SIGHUP"
            ))),
            Some(Source::Api) if name == "stuck" => Err(ControlError::Failed("did not exit".into())),
            Some(Source::Api) => {
                s.channels.remove(name);
                s.removed.push(name.into());
                Ok(())
            }
        }
    }

    fn stats(&self, name: &str) -> Option<ChannelStats> {
        self.state.lock().unwrap().stats.get(name).cloned()
    }

    fn schema_dirs(&self) -> SchemaDirs {
        self.dirs.clone()
    }
}

// ---------------------------------------------------------- server, client

/// A project root with `config/agents/example.avsc`, a schema outside the
/// config directory, and the API serving a [`Fake`] on an ephemeral port.
struct Server {
    addr: SocketAddr,
    root: tempfile::TempDir,
    fake: Fake,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn start() -> Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("config/agents")).unwrap();
    std::fs::write(root.path().join("config/agents/example.avsc"), SCHEMA).unwrap();
    std::fs::write(root.path().join("outside.avsc"), SCHEMA).unwrap();
    let fake = Fake::new(root.path());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let control = fake.clone();
    // The supervisor's runtime: one thread.
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            tokio::select! {
                r = relay::api::serve(listener, control) => r.unwrap(),
                _ = stopped => {}
            }
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Server { addr, root, fake, stop: Some(stop), thread: Some(thread) }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {}: body is not JSON ({e}): {:?}", self.status, String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Asserts the status and that the body is a JSON error; returns it.
    fn error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{:?}", String::from_utf8_lossy(&self.body));
        let v = self.json();
        assert!(v["error"].is_string(), "no \"error\" in {v}");
        v
    }
}

impl Server {
    fn get(&self, path: &str) -> Response {
        self.raw(&format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes())
    }

    fn delete(&self, path: &str) -> Response {
        self.raw(&format!("DELETE {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes())
    }

    fn post(&self, path: &str, body: &Value) -> Response {
        self.post_bytes(path, "application/json", body.to_string().as_bytes())
    }

    fn post_bytes(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.raw(&req)
    }

    /// Sends `request` as is, reads the whole answer (the server closes).
    fn raw(&self, request: &[u8]) -> Response {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // A server that answers before reading everything may close early.
        let _ = s.write_all(request);
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        parse(&buf)
    }
}

fn parse(buf: &[u8]) -> Response {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

fn registration(name: &str, port: u16) -> Value {
    json!({"name": name, "port": port, "schema": "config/agents/example.avsc", "config": {"decimation": 5}})
}

// ------------------------------------------------------------------ tests

#[test]
fn health() {
    let s = start();
    let r = s.get("/api/v1/health");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["service"], "speeddata-registration-api");
    assert_eq!(v["channels"], 1);
}

#[test]
fn register_then_list_show_and_deregister() {
    let s = start();
    let r = s.post("/api/v1/channels", &registration("sensor1", 26001));
    assert_eq!(r.status, 201, "{:?}", r.json());
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["name"], "sensor1");
    assert_eq!(v["port"], 26001);
    assert_eq!(v["pid"], 1000);
    assert_eq!(v["message"], "Channel 'sensor1' registered and relay started");

    // What the supervisor was handed: validated, schema read, overrides typed.
    let added = s.fake.added();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].schema_path.as_deref(), Some("config/agents/example.avsc"));
    let real = std::fs::canonicalize(s.root.path().join("config/agents/example.avsc")).unwrap();
    assert_eq!(added[0].schema_file.as_deref(), Some(real.as_path()));
    assert_eq!(added[0].schema_json, SCHEMA);
    assert_eq!(added[0].overrides.decimation.as_ref().unwrap().factor, Some(5));

    let list = s.get("/api/v1/channels").json();
    let names: Vec<&str> = list["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["example", "sensor1"]);

    let c = s.get("/api/v1/channels/sensor1");
    assert_eq!(c.status, 200);
    let c = c.json();
    for key in ["name", "port", "schema_path", "status", "pid", "created_at", "config", "source", "restarts"] {
        assert!(c.get(key).is_some(), "channel has no {key}: {c}");
    }
    assert_eq!(c["schema_path"], "config/agents/example.avsc");
    assert_eq!(c["status"], "active");
    assert_eq!(c["source"], "api");
    assert_eq!(c["config"], json!({"decimation": {"factor": 5}}));
    assert!(c.get("schema_json").is_none() && c.get("config_json").is_none());

    let d = s.delete("/api/v1/channels/sensor1");
    assert_eq!(d.status, 200);
    assert_eq!(
        d.json(),
        json!({"status": "success", "name": "sensor1", "message": "Channel 'sensor1' de-registered and relay stopped"})
    );
    assert_eq!(s.fake.removed(), ["sensor1"]);
    s.get("/api/v1/channels/sensor1").error(404);
    s.delete("/api/v1/channels/sensor1").error(404);
}

#[test]
fn register_an_inline_schema() {
    let s = start();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let body = json!({"name": "inline", "port": 26005, "schema": schema, "config": {"rotation": 60}});
    assert_eq!(s.post("/api/v1/channels", &body).status, 201);
    let added = s.fake.added();
    assert_eq!((added[0].schema_path.as_ref(), added[0].schema_file.as_ref()), (None, None));
    assert_eq!(s.get("/api/v1/channels/inline/schema").json(), schema);
    assert_eq!(s.get("/api/v1/channels/inline").json()["schema_path"], Value::Null);
}

#[test]
fn status_filter() {
    let s = start();
    s.post("/api/v1/channels", &registration("sensor1", 26001));
    s.fake.stop("sensor1");
    let names = |q: &str| -> Vec<String> {
        let v = s.get(&format!("/api/v1/channels{q}")).json();
        v["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("?status=active"), ["example"]);
    assert_eq!(names("?status=registered"), ["sensor1"]);
    assert_eq!(names(""), ["example", "sensor1"]);
    let e = s.get("/api/v1/channels?status=running").error(400);
    assert_eq!(e["allowed"], json!(["registered", "active"]));
}

#[test]
fn bad_registrations_are_400() {
    let s = start();
    let outside = s.root.path().join("outside.avsc").display().to_string();
    let cases = [
        (json!({"name": "sensor1"}), "Missing required fields"),
        (json!({"name": "a b", "port": 26001, "schema": "config/agents/example.avsc"}), "Invalid channel name"),
        (json!({"name": "x", "port": 80, "schema": "config/agents/example.avsc"}), "Port must be between 1024 and 65535"),
        (json!({"name": "x", "port": 70000, "schema": "config/agents/example.avsc"}), "Port must be between 1024 and 65535"),
        (json!({"name": "x", "port": "high", "schema": "config/agents/example.avsc"}), "Port must be an integer"),
        (json!({"name": "x", "port": 26001, "schema": "config/agents/none.avsc"}), "Schema file not found"),
        (json!({"name": "x", "port": 26001, "schema": outside}), "Schema path outside the schema directories"),
        (json!({"name": "x", "port": 26001, "schema": "config/../outside.avsc"}), "Invalid schema path"),
        (json!({"name": "x", "port": 26001, "schema": {"type": "int"}}), "Invalid schema"),
        (json!({"name": "x", "port": 26001, "schema": "config/agents/example.avsc", "config": {"decimation": 0}}), "Invalid config"),
        (json!({"name": "x", "port": 26001, "schema": "config/agents/example.avsc", "extra": true}), "Unknown field"),
        (json!([]), "Request body required"),
        // What only the supervisor knows: the port is a multicast output port.
        (json!({"name": "x", "port": 6000, "schema": "config/agents/example.avsc"}), "Invalid channel"),
    ];
    for (body, error) in cases {
        let e = s.post("/api/v1/channels", &body).error(400);
        assert_eq!(e["error"], error, "{body} → {e}");
    }
    let e = s.post_bytes("/api/v1/channels", "application/json", b"{\"name\": ").error(400);
    assert_eq!(e["error"], "Request body is not valid JSON");
    let e = s.post_bytes("/api/v1/channels", "application/json", b"").error(400);
    assert_eq!(e["error"], "Request body required");
    assert_eq!(s.post("/api/v1/channels", &json!({"name": "sensor1"})).json()["required"], json!(["name", "port", "schema"]));
    assert!(s.fake.added().is_empty(), "nothing invalid reached the supervisor");
}

#[test]
fn conflicts_are_409() {
    let s = start();
    // The port of a relay.yaml channel.
    let e = s.post("/api/v1/channels", &registration("sensor1", 26000)).error(409);
    assert_eq!(e, json!({"error": "Port already in use", "port": 26000, "used_by": "example"}));
    // A name in use.
    let e = s.post("/api/v1/channels", &registration("example", 26001)).error(409);
    assert_eq!(e, json!({"error": "Channel name already registered", "name": "example"}));
    // The same twice.
    assert_eq!(s.post("/api/v1/channels", &registration("sensor1", 26001)).status, 201);
    let e = s.post("/api/v1/channels", &registration("sensor1", 26001)).error(409);
    assert_eq!(e["used_by"], "sensor1");
    // Lost a race inside the supervisor.
    let e = s.post("/api/v1/channels", &registration("racer", 26002)).error(409);
    assert_eq!(e["used_by"], "faster");
    // Removing a relay.yaml channel is the file's business.
    let e = s.delete("/api/v1/channels/example").error(409);
    assert!(e["error"].as_str().unwrap().contains("relay.yaml"), "{e}");
}

#[test]
fn supervisor_failures_are_500() {
    let s = start();
    let e = s.post("/api/v1/channels", &registration("explode", 26001)).error(500);
    assert_eq!(e["error"], "Failed to start relay process");
    assert_eq!(e["name"], "explode");
    assert_eq!(e["details"], "spawn failed: no such file");
    assert_eq!(s.post("/api/v1/channels", &registration("stuck", 26002)).status, 201);
    let e = s.delete("/api/v1/channels/stuck").error(500);
    assert_eq!(e["error"], "Failed to stop relay process");
}

#[test]
fn oversized_bodies_are_413() {
    let s = start();
    // Declared too large: refused before reading.
    let head = format!(
        "POST /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    let e = s.raw(head.as_bytes()).error(413);
    assert_eq!(e["limit_bytes"], MAX_BODY_BYTES);
    // Too large without a length (chunked): refused when the limit is hit.
    let chunk = vec![b' '; 64 * 1024];
    let mut req = b"POST /api/v1/channels/example/validate-schema HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..(MAX_BODY_BYTES / chunk.len() + 2) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.raw(&req).error(413);
    // Just under the limit is read (and judged on its content).
    let mut big = json!({"schema": serde_json::from_str::<Value>(SCHEMA).unwrap()}).to_string().into_bytes();
    big.resize(MAX_BODY_BYTES - 1, b' ');
    assert_eq!(s.post_bytes("/api/v1/channels/example/validate-schema", "application/json", &big).status, 200);
}

#[test]
fn non_json_bodies_are_415() {
    let s = start();
    let body = registration("sensor1", 26001).to_string();
    // A form or text/plain post (what another site's page could send without a preflight).
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let e = s.post_bytes("/api/v1/channels", ct, body.as_bytes()).error(415);
        assert_eq!(e["error"], "Content-Type must be application/json");
    }
    assert_eq!(s.post_bytes("/api/v1/channels", "application/json; charset=utf-8", body.as_bytes()).status, 201);
}

#[test]
fn unknown_things_are_404() {
    let s = start();
    for path in [
        "/api/v1/channels/nonexistent",
        "/api/v1/channels/nonexistent/schema",
        "/api/v1/channels/nonexistent/stats",
    ] {
        let e = s.get(path).error(404);
        assert_eq!(e, json!({"error": "Channel not found", "name": "nonexistent"}));
    }
    s.post("/api/v1/channels/nonexistent/validate-schema", &json!({"schema": {}})).error(404);
    s.delete("/api/v1/channels/nonexistent").error(404);
    let e = s.get("/api/v2/channels").error(404);
    assert_eq!(e["path"], "/api/v2/channels");
    s.get("/").error(404);
    // Not a valid name: it cannot exist, and saying why helps.
    s.get("/api/v1/channels/a%20b").error(400);
    s.get("/api/v1/channels/%2e%2e").error(400);
}

#[test]
fn wrong_methods_are_405() {
    let s = start();
    let put = s.raw(b"PUT /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(put.error(405)["error"], "Method not allowed");
    let allow = put.header("allow").expect("an Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    s.get("/api/v1/channels/example/validate-schema").error(405);
    s.post("/api/v1/health", &json!({})).error(405);
    s.post("/api/v1/channels/example", &json!({})).error(405);
    s.delete("/api/v1/channels").error(405);
    s.delete("/metrics").error(405);
}

#[test]
fn schema_and_validate_schema() {
    let s = start();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let r = s.get("/api/v1/channels/example/schema");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), schema);

    let ok = s.post("/api/v1/channels/example/validate-schema", &json!({"schema": schema}));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!({"valid": true, "message": "Schema matches registered schema"}));
    // The bare schema, as SpeedData's curl example posts it.
    assert_eq!(s.post("/api/v1/channels/example/validate-schema", &schema).json()["valid"], true);

    let wrong = json!({"namespace": "wrong", "type": "record", "name": "data", "fields": [{"name": "foo", "type": "int"}]});
    let r = s.post("/api/v1/channels/example/validate-schema", &json!({"schema": wrong}));
    assert_eq!(r.status, 409);
    let v = r.json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["message"], "Schema does not match");
    assert_eq!(v["registered_schema"], schema);
    assert_eq!(v["provided_schema"], wrong);

    let e = s.post("/api/v1/channels/example/validate-schema", &json!({"other": 1})).error(400);
    assert_eq!(e["error"], "Request body must contain 'schema' field");
}

#[test]
fn ports() {
    let s = start();
    s.post("/api/v1/channels", &registration("sensor1", 26003));
    let v = s.get("/api/v1/ports/available?start=26000&end=26010").json();
    assert_eq!(v["range"], json!({"start": 26000, "end": 26010}));
    let available: Vec<u64> = v["available"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
    assert_eq!(available.len(), 9, "inclusive range less 26000 and 26003");
    assert!(!available.contains(&26000) && !available.contains(&26003) && available.contains(&26010));
    assert_eq!(v["count"], 9);
    let all = s.get("/api/v1/ports/available").json();
    assert_eq!((all["range"].clone(), all["count"].clone()), (json!({"start": 26000, "end": 27000}), json!(999)));
    for bad in ["?start=26010&end=26000", "?start=26000&end=26000", "?start=x", "?start=80&end=90", "?end=70000"] {
        s.get(&format!("/api/v1/ports/available{bad}")).error(400);
    }
    assert_eq!(
        s.get("/api/v1/ports/26001/status").json(),
        json!({"port": 26001, "available": true, "status": "free"})
    );
    assert_eq!(
        s.get("/api/v1/ports/26003/status").json(),
        json!({"port": 26003, "available": false, "status": "in_use", "channel": "sensor1"})
    );
    s.get("/api/v1/ports/http/status").error(400);
    s.get("/api/v1/ports/99999/status").error(400);
}

#[test]
fn stats_and_metrics() {
    let s = start();
    s.post("/api/v1/channels", &registration("sensor1", 26001));
    let v = s.get("/api/v1/channels/example/stats").json();
    assert_eq!((v["name"].clone(), v["status"].clone(), v["restarts"].clone()), (json!("example"), json!("active"), json!(2)));
    assert_eq!(v["stats"]["datagrams_in"], 42);
    assert_eq!(s.get("/api/v1/channels/sensor1/stats").json()["stats"], Value::Null, "none published yet");

    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(m.body).unwrap();
    for want in [
        "speeddata_channels 2",
        "speeddata_channel_up{channel=\"example\"} 1",
        "speeddata_channel_up{channel=\"sensor1\"} 1",
        "speeddata_channel_restarts_total{channel=\"example\"} 2",
        "speeddata_channel_disk_bytes{channel=\"example\"} 1000",
        "speeddata_channel_datagrams_in_total{channel=\"example\"} 42",
        "speeddata_channel_bytes_in_total{channel=\"example\"} 4200",
    ] {
        assert!(text.lines().any(|l| l == want), "no {want:?} in\n{text}");
    }
}

#[test]
fn foreign_host_names_are_403() {
    let s = start();
    // A page whose domain was re-bound to 127.0.0.1 sends its own name.
    let r = s.raw(b"GET /api/v1/channels HTTP/1.1\r\nHost: attacker.example:8080\r\nConnection: close\r\n\r\n");
    assert_eq!(r.error(403)["error"], "Forbidden host");
    for host in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080"] {
        let req = format!("GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        assert_eq!(s.raw(req.as_bytes()).status, 200, "{host}");
    }
}

#[test]
fn concurrent_clients() {
    let s = start();
    let addr = s.addr;
    let threads: Vec<_> = (0..8u16)
        .map(|i| {
            std::thread::spawn(move || {
                let body = registration(&format!("c{i}"), 26100 + i).to_string();
                let req = format!(
                    "POST /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(req.as_bytes()).unwrap();
                let mut buf = Vec::new();
                c.read_to_end(&mut buf).unwrap();
                parse(&buf).status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 201);
    }
    assert_eq!(s.get("/api/v1/channels").json()["channels"].as_array().unwrap().len(), 9);
}
