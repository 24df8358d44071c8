//! The decimators on arbitrary sequences of valid datums (generated from the
//! input and encoded by apache-avro), every algorithm, count and time
//! windows, arrival times that jump and step back, polls and a final flush:
//! never panics, reads every datum the validator accepts, emits only datums
//! the validator accepts, keeps `next_deadline` ahead of a poll, and for
//! count windows emits exactly one output per window (two for minmax),
//! `downsample` the window's last datum byte for byte.

#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use apache_avro::Schema;
use libfuzzer_sys::fuzz_target;
use relay::avro::DatumValidator;
use relay::channel::decimate::Decimator;
use relay::channel::out_batch::OutBatch;
use relay::config::{Algorithm, Decimation, Window};
use speeddata_xdp_fuzz::cursor::Cursor;
use speeddata_xdp_fuzz::gen::Generator;
use speeddata_xdp_fuzz::schemas;

struct Case {
    schema: &'static Schema,
    generator: Generator<'static>,
    validator: DatumValidator,
    /// `time_field` values to try: the schema's own, another, a missing one.
    time_fields: &'static [&'static str],
}

impl Case {
    fn new(text: &str, time_fields: &'static [&'static str]) -> Case {
        let schema: &'static Schema = Box::leak(Box::new(schemas::parse(text)));
        Case {
            schema,
            generator: Generator::new(schema),
            validator: DatumValidator::new(schema).expect("the fuzz schemas compile"),
            time_fields,
        }
    }
}

static CASES: LazyLock<[Case; 2]> = LazyLock::new(|| {
    [
        Case::new(schemas::EXAMPLE, &["time", "counter", "absent"]),
        Case::new(
            schemas::DECIMATE,
            &["header.stamp", "time", "pos.y", "header.absent"],
        ),
    ]
});

const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::Downsample,
    Algorithm::Average,
    Algorithm::MinMax,
    Algorithm::Rms,
];

/// Operations per input, so one input cannot run for long.
const MAX_OPS: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let case = &CASES[usize::from(c.u8()) % CASES.len()];
    let algorithm = ALGORITHMS[usize::from(c.u8()) % ALGORITHMS.len()];
    let shape = c.u8();
    let window = match shape & 3 {
        // 0 is allowed: the decimator treats it as 1.
        0 | 1 => Window::Count(u32::from(c.u8() % 16)),
        2 => Window::Time(Duration::from_millis(u64::from(c.u16() % 5000))),
        _ => Window::Time(Duration::from_nanos(u64::from(c.u16()))),
    };
    let time_field = case.time_fields[usize::from(shape >> 2) % case.time_fields.len()];
    let cfg = Decimation {
        enabled: true,
        window,
        algorithm,
        time_field: time_field.into(),
    };
    let mut dec = Decimator::new(&cfg, case.schema)
        .expect("the fuzz schemas compile")
        .expect("enabled");

    let mut now = SystemTime::UNIX_EPOCH
        + Duration::from_secs(1_700_000_000)
        + Duration::from_nanos(c.u32().into());
    let mut out = OutBatch::default();
    let mut pushed: Vec<Vec<u8>> = Vec::new();
    for _ in 0..MAX_OPS {
        if c.is_empty() {
            break;
        }
        match c.u8() % 8 {
            0..=3 => {
                let datum = case.generator.datum(&mut c);
                case.validator
                    .validate(&datum)
                    .expect("apache-avro encoded an invalid datum");
                dec.push(&datum, now, &mut out);
                pushed.push(datum);
            }
            4 => {
                // The same values again (windows of equal values).
                let Some(datum) = pushed.last().cloned() else {
                    continue;
                };
                dec.push(&datum, now, &mut out);
                pushed.push(datum);
            }
            5 => now += Duration::from_micros(u64::from(c.u16()) * u64::from(c.u8() % 16)),
            6 => {
                dec.poll(now, &mut out);
                if let Some(deadline) = dec.next_deadline() {
                    assert!(
                        deadline > now,
                        "after a poll at {now:?} the deadline {deadline:?} has passed"
                    );
                }
            }
            _ => now -= Duration::from_micros(u64::from(c.u16())),
        }
    }
    dec.flush(&mut out);

    assert_eq!(
        dec.unreadable, 0,
        "the decimator could not read a datum the validator accepts"
    );
    for (i, datum) in out.iter_from(0).enumerate() {
        if let Err(e) = case.validator.validate(datum) {
            panic!(
                "output datum {i} of {algorithm:?} / {window:?} / {time_field:?} is invalid: {e}"
            );
        }
    }
    if let Window::Count(n) = window {
        let n = n.max(1) as usize;
        let windows = pushed.len().div_ceil(n);
        let per_window = if algorithm == Algorithm::MinMax { 2 } else { 1 };
        assert_eq!(
            out.len(),
            windows * per_window,
            "{} datums in windows of {n}",
            pushed.len()
        );
        if algorithm == Algorithm::Downsample {
            for (w, datum) in out.iter_from(0).enumerate() {
                let last = ((w + 1) * n).min(pushed.len()) - 1;
                assert_eq!(
                    datum,
                    &pushed[last][..],
                    "downsample window {w} is not its last datum"
                );
            }
        }
    }
});
