//! `speeddata-xdp demo-source`: a stand-in telemetry source for the demo
//! (`cargo xtask run` without an interface). Sends datums of a channel's
//! schema, filled with plausible values, to the channel's port.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use apache_avro::types::Value;
use apache_avro::Schema;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The schema of the datums to send.
    #[arg(long, default_value = "config/agents/example.avsc")]
    pub schema: PathBuf,
    /// Where to send them.
    #[arg(long, default_value = "127.0.0.1:26000")]
    pub to: SocketAddr,
    /// Datums per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Stop after this many (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.schema).with_context(|| format!("reading {}", args.schema.display()))?;
    let schema = Schema::parse_str(&text).with_context(|| format!("parsing {}", args.schema.display()))?;
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema).build()?;
    let period = Duration::from_secs(1) / args.rate.max(1);
    let start = Instant::now();
    log::info!("demo source: {} datums/s of {} to {}", args.rate, args.schema.display(), args.to);
    let mut n: u64 = 0;
    while args.count.is_none_or(|c| n < c) {
        let datum = writer.write_value_to_vec(sample(&schema, n)?)?;
        if let Err(e) = sock.send_to(&datum, args.to) {
            log::warn!("demo source: send to {}: {e}", args.to);
        }
        n += 1;
        let due = start + period * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}

/// A record of `schema` for datum `n`: waves for doubles, the time for `time`.
fn sample(schema: &Schema, n: u64) -> Result<Value> {
    let Schema::Record(rec) = schema else { anyhow::bail!("the demo source needs a record schema") };
    let t = n as f64 / 100.0;
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as i64;
    let fields = rec
        .fields
        .iter()
        .map(|f| {
            let v = match (&f.schema, f.name.as_str()) {
                (Schema::Long, "time") => Value::Long(now_ns),
                (Schema::Long, _) => Value::Long(n as i64),
                (Schema::Int, _) => Value::Int(n as i32),
                (Schema::Double, name) => Value::Double(wave(name, t)),
                (Schema::Float, name) => Value::Float(wave(name, t) as f32),
                (Schema::String, _) => Value::String(format!("demo datum {n}")),
                (Schema::Boolean, _) => Value::Boolean(n % 2 == 0),
                (other, name) => anyhow::bail!("the demo source cannot fill field {name} of type {other:?}"),
            };
            Ok((f.name.clone(), v))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Record(fields))
}

fn wave(name: &str, t: f64) -> f64 {
    match name {
        n if n.contains("sine") => (t * std::f64::consts::TAU / 10.0).sin(),
        n if n.contains("ramp") => t % 10.0 / 10.0,
        n if n.contains("square") => if (t / 5.0) as u64 % 2 == 0 { 1.0 } else { -1.0 },
        _ => ((t * 12.9898).sin() * 43758.5453).fract(),
    }
}
