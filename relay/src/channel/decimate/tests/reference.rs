//! The decimated values against a reference computed here, independently of
//! the decimator: inputs and outputs decoded with apache-avro's reader, the
//! statistics computed with plain f64 (and i128 for integer means) code.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;

use super::{decimator, nested_schema, run, t0, ALGORITHMS};
use crate::avro::testutil::{encode, example_schema, example_value};
use crate::avro::DatumValidator;
use crate::config::{Algorithm, Window};

/// The values of one datum of [`super::NESTED_SCHEMA`].
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub x: f32,
    pub y: i32,
    pub z: Option<f64>,
    pub temp: Option<f64>,
    pub count: Option<i64>,
    pub flags: Vec<i32>,
    pub extra: Vec<(String, f64)>,
    pub bad: bool,
    pub v: f64,
    pub n: i64,
    pub ok: bool,
    pub vel: (f32, i32, Option<f64>),
    pub big: i64,
}

fn nullable(v: Option<Value>, null_first: bool) -> Value {
    match (v, null_first) {
        (None, true) => Value::Union(0, Box::new(Value::Null)),
        (Some(v), true) => Value::Union(1, Box::new(v)),
        (Some(v), false) => Value::Union(0, Box::new(v)),
        (None, false) => Value::Union(1, Box::new(Value::Null)),
    }
}

fn vec_value(x: f32, y: i32, z: Option<f64>) -> Value {
    Value::Record(vec![
        ("x".into(), Value::Float(x)),
        ("y".into(), Value::Int(y)),
        ("z".into(), nullable(z.map(Value::Double), true)),
    ])
}

impl Sample {
    /// The datum of sequence number `i`.
    pub(super) fn value(&self, i: u64) -> Value {
        let extra = self
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), Value::Double(*v)));
        Value::Record(vec![
            (
                "time".into(),
                Value::Long(1_700_000_000_000_000_000 + i as i64 * 200_000),
            ),
            ("label".into(), Value::String(format!("sample {i}"))),
            ("pos".into(), vec_value(self.x, self.y, self.z)),
            ("temp".into(), nullable(self.temp.map(Value::Double), true)),
            ("count".into(), nullable(self.count.map(Value::Long), false)),
            (
                "flags".into(),
                Value::Array(self.flags.iter().map(|f| Value::Int(*f)).collect()),
            ),
            ("extra".into(), Value::Map(extra.collect())),
            (
                "status".into(),
                if self.bad {
                    Value::Enum(1, "BAD".into())
                } else {
                    Value::Enum(0, "OK".into())
                },
            ),
            (
                "inner".into(),
                Value::Record(vec![
                    (
                        "deep".into(),
                        Value::Record(vec![
                            ("v".into(), Value::Double(self.v)),
                            ("n".into(), Value::Long(self.n)),
                        ]),
                    ),
                    ("ok".into(), Value::Boolean(self.ok)),
                ]),
            ),
            ("vel".into(), vec_value(self.vel.0, self.vel.1, self.vel.2)),
            (
                "seen".into(),
                Value::TimestampMillis(1_700_000_000_000 + i as i64),
            ),
            ("big".into(), Value::Long(self.big)),
        ])
    }
}

/// A deterministic stream of samples with nulls, including runs of nulls
/// long enough to null a whole window.
fn nested_samples(n: u64) -> Vec<Sample> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 11
    };
    (0..n)
        .map(|i| {
            let r = next();
            let f = (r % 2_000_001) as f64 / 1000.0 - 1000.0;
            Sample {
                x: f as f32 / 7.0,
                y: (r % 100_001) as i32 - 50_000,
                z: (!(100..200).contains(&i)).then_some(f * 3.0),
                temp: (i % 3 != 0).then_some(20.0 + f / 100.0),
                count: (i % 4 != 1).then_some((r % 1_000_000_007) as i64 - 500_000_000),
                flags: (0..(r % 4)).map(|k| k as i32 * 3 - 1).collect(),
                extra: (0..(r % 3))
                    .map(|k| (format!("k{k}"), f + k as f64))
                    .collect(),
                bad: r % 5 == 0,
                v: -f,
                n: (r as i64) << 1,
                ok: r % 2 == 0,
                vel: (
                    (f / 3.0) as f32,
                    (r % 7) as i32 - 3,
                    (i % 2 == 0).then_some(f),
                ),
                big: i64::MAX - (r % 1000) as i64,
            }
        })
        .collect()
}

/// Decodes one whole datum (every byte used) and checks it with the validator too.
pub(super) fn decode(schema: &Schema, datum: &[u8]) -> Value {
    let mut rest = datum;
    let value = GenericDatumReader::builder(schema)
        .build()
        .unwrap()
        .read_value(&mut rest)
        .unwrap_or_else(|e| panic!("output does not decode: {e}: {datum:?}"));
    assert!(
        rest.is_empty(),
        "{} trailing bytes in {datum:?}",
        rest.len()
    );
    DatumValidator::new(schema)
        .unwrap()
        .validate(datum)
        .unwrap();
    value
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    Mean,
    Min,
    Max,
    Rms,
}

fn stats(algorithm: Algorithm) -> &'static [Stat] {
    match algorithm {
        Algorithm::Downsample => &[],
        Algorithm::Average => &[Stat::Mean],
        Algorithm::MinMax => &[Stat::Min, Stat::Max],
        Algorithm::Rms => &[Stat::Rms],
    }
}

/// Mean rounded half away from zero, exactly.
fn int_mean(values: &[i64]) -> i64 {
    let n = values.len() as i128;
    let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
    let away = (2 * sum.abs() + n) / (2 * n);
    i64::try_from(if sum < 0 { -away } else { away }).unwrap()
}

fn float_stat(values: &[f64], stat: Stat) -> f64 {
    let n = values.len() as f64;
    match stat {
        Stat::Mean => values.iter().sum::<f64>() / n,
        Stat::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Stat::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Stat::Rms => (values.iter().map(|v| v * v).sum::<f64>() / n).sqrt(),
    }
}

fn int_stat(values: &[i64], stat: Stat) -> i64 {
    match stat {
        Stat::Mean => int_mean(values),
        Stat::Min => *values.iter().min().unwrap(),
        Stat::Max => *values.iter().max().unwrap(),
        Stat::Rms => {
            let floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            float_stat(&floats, Stat::Rms).round() as i64
        }
    }
}

/// The statistic of numbers of the same type as `last`.
fn number(last: &Value, window: &[&Value], stat: Stat) -> Value {
    let ints = || {
        window.iter().map(|v| match v {
            Value::Int(i) => i64::from(*i),
            Value::Long(l) => *l,
            other => panic!("{other:?}"),
        })
    };
    let floats = || {
        window.iter().map(|v| match v {
            Value::Float(f) => f64::from(*f),
            Value::Double(d) => *d,
            other => panic!("{other:?}"),
        })
    };
    match last {
        Value::Int(_) => Value::Int(
            int_stat(&ints().collect::<Vec<_>>(), stat).clamp(i32::MIN.into(), i32::MAX.into())
                as i32,
        ),
        Value::Long(_) => Value::Long(int_stat(&ints().collect::<Vec<_>>(), stat)),
        Value::Float(_) => Value::Float(float_stat(&floats().collect::<Vec<_>>(), stat) as f32),
        Value::Double(_) => Value::Double(float_stat(&floats().collect::<Vec<_>>(), stat)),
        other => panic!("not a number: {other:?}"),
    }
}

fn is_number(v: &Value) -> bool {
    matches!(
        v,
        Value::Int(_) | Value::Long(_) | Value::Float(_) | Value::Double(_)
    )
}

/// The expected output for `stat`: `last` with every numeric value replaced
/// by the statistic over the window at the same place; `time` (top level)
/// and everything else as in `last`.
fn expected(last: &Value, window: &[&Value], stat: Stat, top: bool) -> Value {
    match last {
        Value::Record(fields) => Value::Record(
            fields
                .iter()
                .enumerate()
                .map(|(i, (name, v))| {
                    if top && name == "time" {
                        return (name.clone(), v.clone());
                    }
                    let column: Vec<&Value> = window
                        .iter()
                        .map(|w| match w {
                            Value::Record(f) => &f[i].1,
                            other => panic!("{other:?}"),
                        })
                        .collect();
                    (name.clone(), expected(v, &column, stat, false))
                })
                .collect(),
        ),
        Value::Union(_, inner) if is_number(inner) || **inner == Value::Null => {
            let present: Vec<(u32, &Value)> = window
                .iter()
                .filter_map(|w| match w {
                    Value::Union(i, v) if is_number(v) => Some((*i, &**v)),
                    _ => None,
                })
                .collect();
            match present.first() {
                None => last.clone(),
                Some(&(branch, like)) => {
                    let values: Vec<&Value> = present.iter().map(|(_, v)| *v).collect();
                    Value::Union(branch, Box::new(number(like, &values, stat)))
                }
            }
        }
        v if is_number(v) => number(v, window, stat),
        other => other.clone(),
    }
}

fn assert_close(got: &Value, want: &Value, at: &str) {
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0);
    match (got, want) {
        (Value::Record(g), Value::Record(w)) => {
            assert_eq!(g.len(), w.len(), "{at}");
            for ((name, g), (_, w)) in g.iter().zip(w) {
                assert_close(g, w, &format!("{at}.{name}"));
            }
        }
        (Value::Union(gi, g), Value::Union(wi, w)) => {
            assert_eq!(gi, wi, "{at}: union branch");
            assert_close(g, w, at);
        }
        (Value::Double(g), Value::Double(w)) => {
            assert!(close(*g, *w, 1e-9), "{at}: got {g}, want {w}")
        }
        (Value::Float(g), Value::Float(w)) => {
            assert!(
                close(f64::from(*g), f64::from(*w), 1e-6),
                "{at}: got {g}, want {w}"
            );
        }
        (g, w) => assert_eq!(g, w, "{at}"),
    }
}

/// Checks `outputs` of `algorithm` against the reference for `windows`
/// (the input datums of each window, in order).
pub(super) fn check(
    schema: &Schema,
    algorithm: Algorithm,
    windows: &[Vec<&[u8]>],
    outputs: &[Vec<u8>],
) {
    let per_window = stats(algorithm).len().max(1);
    assert_eq!(outputs.len(), windows.len() * per_window, "output count");
    for (w, (window, out)) in windows.iter().zip(outputs.chunks(per_window)).enumerate() {
        let last = window.last().expect("windows are not empty");
        if algorithm == Algorithm::Downsample {
            assert_eq!(out[0], *last, "window {w}: the last datum, byte for byte");
            continue;
        }
        let values: Vec<Value> = window.iter().map(|d| decode(schema, d)).collect();
        let refs: Vec<&Value> = values.iter().collect();
        let last = values.last().unwrap();
        for (stat, got) in stats(algorithm).iter().zip(out) {
            let want = expected(last, &refs, *stat, true);
            assert_close(&decode(schema, got), &want, &format!("window {w} {stat:?}"));
        }
    }
}

/// Groups datums by count.
pub(super) fn count_windows(input: &[(Vec<u8>, SystemTime)], factor: usize) -> Vec<Vec<&[u8]>> {
    input
        .chunks(factor)
        .map(|c| c.iter().map(|(d, _)| d.as_slice()).collect())
        .collect()
}

/// Groups consecutive datums by the `interval` cell (since the epoch) of their arrival.
pub(super) fn time_windows(input: &[(Vec<u8>, SystemTime)], interval: Duration) -> Vec<Vec<&[u8]>> {
    let cell = |t: &SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() / interval.as_nanos()
    };
    let mut windows: Vec<(u128, Vec<&[u8]>)> = Vec::new();
    for (d, t) in input {
        match windows.last_mut() {
            Some((c, w)) if *c == cell(t) => w.push(d),
            _ => windows.push((cell(t), vec![d])),
        }
    }
    windows.into_iter().map(|(_, w)| w).collect()
}

/// Runs every algorithm with both window kinds over `input` and checks each
/// against the reference.
fn check_all(schema: &Schema, input: &[(Vec<u8>, SystemTime)]) {
    for algorithm in ALGORITHMS {
        let out = run(&mut decimator(schema, algorithm, Window::Count(10)), input);
        check(schema, algorithm, &count_windows(input, 10), &out);
        let interval = Duration::from_millis(10);
        let out = run(
            &mut decimator(schema, algorithm, Window::Time(interval)),
            input,
        );
        check(schema, algorithm, &time_windows(input, interval), &out);
    }
}

fn at(i: u64) -> SystemTime {
    t0() + Duration::from_micros(200 * i)
}

#[test]
fn example_schema_every_algorithm_both_windows() {
    let schema = example_schema();
    // 1003: the last count window is cut short (flushed).
    let input: Vec<_> = (0..1003)
        .map(|i| (encode(&schema, example_value(i)), at(i)))
        .collect();
    check_all(&schema, &input);
}

#[test]
fn nested_schema_every_algorithm_both_windows() {
    let schema = nested_schema();
    let input: Vec<_> = nested_samples(507)
        .iter()
        .zip(0..)
        .map(|(s, i)| (encode(&schema, s.value(i)), at(i)))
        .collect();
    check_all(&schema, &input);
}

#[test]
fn average_of_the_example_by_hand() {
    // A check of the reference itself on numbers small enough to do by hand.
    let schema = example_schema();
    let datum = |t: i64, c: i32, x: f64| {
        encode(
            &schema,
            Value::Record(vec![
                ("time".into(), Value::Long(t)),
                ("message".into(), Value::String(format!("m{t}"))),
                ("counter".into(), Value::Int(c)),
                ("sine_wave".into(), Value::Double(x)),
                ("ramp".into(), Value::Double(-x)),
                ("square_wave".into(), Value::Double(1.0)),
                ("noise".into(), Value::Double(0.0)),
            ]),
        )
    };
    let input = [
        (datum(1, 1, 1.0), at(0)),
        (datum(2, 2, 2.0), at(1)),
        (datum(3, 4, 6.0), at(2)),
    ];
    let out = run(
        &mut decimator(&schema, Algorithm::Average, Window::Count(3)),
        &input,
    );
    let got = decode(&schema, &out[0]);
    let fields: HashMap<String, Value> = match got {
        Value::Record(f) => f.into_iter().collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(fields["time"], Value::Long(3));
    assert_eq!(fields["message"], Value::String("m3".into()));
    assert_eq!(fields["counter"], Value::Int(2), "7/3 rounds to 2");
    assert_eq!(fields["sine_wave"], Value::Double(3.0));
    assert_eq!(fields["ramp"], Value::Double(-3.0));
    let out = run(
        &mut decimator(&schema, Algorithm::MinMax, Window::Count(3)),
        &input,
    );
    assert_eq!(
        decode(&schema, &out[0]),
        decode(&schema, &datum(3, 1, 1.0)).with_ramp(-6.0)
    );
    assert_eq!(
        decode(&schema, &out[1]),
        decode(&schema, &datum(3, 4, 6.0)).with_ramp(-1.0)
    );
    let out = run(
        &mut decimator(&schema, Algorithm::Rms, Window::Count(3)),
        &input,
    );
    let rms = ((1.0 + 4.0 + 36.0) / 3.0_f64).sqrt();
    let want = decode(
        &schema,
        &datum(3, ((1.0 + 4.0 + 16.0) / 3.0_f64).sqrt().round() as i32, rms),
    );
    assert_eq!(decode(&schema, &out[0]), want.with_ramp(rms));
}

trait WithRamp {
    fn with_ramp(self, ramp: f64) -> Value;
}

impl WithRamp for Value {
    fn with_ramp(self, ramp: f64) -> Value {
        match self {
            Value::Record(mut f) => {
                f[4].1 = Value::Double(ramp);
                Value::Record(f)
            }
            other => other,
        }
    }
}

#[test]
fn int_means_round_half_away_from_zero() {
    assert_eq!(int_mean(&[1, 2]), 2);
    assert_eq!(int_mean(&[-1, -2]), -2);
    assert_eq!(int_mean(&[1, 1, 2]), 1);
    assert_eq!(int_mean(&[i64::MAX, i64::MAX]), i64::MAX);
    assert_eq!(
        int_mean(&[i64::MIN, i64::MAX]),
        -1,
        "-0.5 rounds away from zero"
    );
}
