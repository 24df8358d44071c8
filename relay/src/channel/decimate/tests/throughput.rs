//! Datums per second per algorithm, next to validation alone. Run in release:
//! `cargo test --release -p speeddata-xdp --lib decimate::tests::throughput -- --ignored --nocapture`

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use super::{decimator, nested_schema, t0, ALGORITHMS};
use crate::avro::testutil::{encode, example_datum, example_schema};
use crate::avro::DatumValidator;
use crate::channel::out_batch::OutBatch;
use crate::config::Window;

const N: u64 = 2_000_000;

fn rate(n: u64, took: Duration) -> String {
    format!(
        "{:>6.1} M datums/s ({:>5.1} ns/datum)",
        n as f64 / took.as_secs_f64() / 1e6,
        took.as_nanos() as f64 / n as f64
    )
}

fn measure(name: &str, schema: &apache_avro::Schema, datums: &[Vec<u8>]) {
    let validator = DatumValidator::new(schema).unwrap();
    let start = Instant::now();
    for i in 0..N {
        black_box(validator.validate(black_box(&datums[i as usize % datums.len()]))).unwrap();
    }
    println!("{name:8} validate            {}", rate(N, start.elapsed()));
    for window in [Window::Count(50), Window::Time(Duration::from_millis(10))] {
        for algorithm in ALGORITHMS {
            let mut d = decimator(schema, algorithm, window);
            let mut out = OutBatch::default();
            let start = Instant::now();
            for i in 0..N {
                let now: SystemTime = t0() + Duration::from_micros(200 * i);
                d.push(black_box(&datums[i as usize % datums.len()]), now, &mut out);
                if out.len() >= 64 {
                    out.clear();
                }
            }
            let took = start.elapsed();
            let kind = match window {
                Window::Count(_) => "count",
                Window::Time(_) => "time",
            };
            println!(
                "{name:8} {:<10} {kind:5}  {}",
                format!("{algorithm:?}"),
                rate(N, took)
            );
        }
    }
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn throughput() {
    let schema = example_schema();
    let datums: Vec<_> = (0..1000).map(|i| example_datum(&schema, i)).collect();
    measure("example", &schema, &datums);
    let schema = nested_schema();
    let datums: Vec<_> = (0..1000)
        .map(|i| {
            let s = super::reference::Sample {
                x: i as f32,
                y: i as i32,
                z: (i % 2 == 0).then_some(i as f64),
                temp: Some(20.0),
                count: Some(i as i64),
                flags: vec![1, 2],
                extra: vec![("a".into(), 1.0)],
                bad: false,
                v: 0.5,
                n: 7,
                ok: true,
                vel: (1.0, 2, None),
                big: 1 << 40,
            };
            encode(&schema, s.value(i))
        })
        .collect();
    measure("nested", &schema, &datums);
}
