//! Property tests over random streams, window sizes and arrival gaps: the
//! number of outputs, that every output decodes with the schema, and that
//! the values equal the reference.

use std::time::Duration;

use proptest::prelude::*;

use super::reference::{check, count_windows, time_windows, Sample};
use super::{decimator, nested_schema, run, t0, ALGORITHMS};
use crate::avro::testutil::encode;
use crate::channel::decimate::fold::write_long;
use crate::avro::ocf::read_long;
use crate::config::{Algorithm, Window};

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![-1e6..1e6, Just(0.0), Just(-0.0), -1e-3..1e-3]
}

fn sample() -> impl Strategy<Value = Sample> {
    let numbers = (
        (
            -1e4f32..1e4f32,
            any::<i32>(),
            proptest::option::of(finite()),
        ),
        proptest::option::of(finite()),
        proptest::option::of(any::<i64>()),
        finite(),
        any::<i64>(),
        any::<i64>(),
    );
    let rest = (
        proptest::collection::vec(any::<i32>(), 0..4),
        proptest::collection::vec(("[a-z]{1,3}", finite()), 0..3),
        any::<bool>(),
        any::<bool>(),
        (
            -1e4f32..1e4f32,
            -100i32..100,
            proptest::option::of(finite()),
        ),
    );
    (numbers, rest).prop_map(
        |((pos, temp, count, v, n, big), (flags, extra, bad, ok, vel))| Sample {
            x: pos.0,
            y: pos.1,
            z: pos.2,
            temp,
            count,
            flags,
            extra,
            bad,
            v,
            n,
            ok,
            vel,
            big,
        },
    )
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    proptest::sample::select(ALGORITHMS.to_vec())
}

fn outputs_per_window(a: Algorithm) -> usize {
    if a == Algorithm::MinMax {
        2
    } else {
        1
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn count_windows_match_the_reference(
        samples in proptest::collection::vec(sample(), 0..60),
        factor in 1u32..12,
        algorithm in algorithm(),
    ) {
        let schema = nested_schema();
        let input: Vec<_> = samples.iter().zip(0..).map(|(s, i)| (encode(&schema, s.value(i)), t0())).collect();
        let out = run(&mut decimator(&schema, algorithm, Window::Count(factor)), &input);
        let windows = input.len().div_ceil(factor as usize);
        prop_assert_eq!(out.len(), windows * outputs_per_window(algorithm));
        check(&schema, algorithm, &count_windows(&input, factor as usize), &out);
    }

    #[test]
    fn time_windows_match_the_reference(
        samples in proptest::collection::vec((sample(), 0u64..5_000), 0..60),
        interval_us in 1u64..10_000,
        algorithm in algorithm(),
    ) {
        let schema = nested_schema();
        let mut at = t0();
        let input: Vec<_> = samples
            .iter()
            .zip(0..)
            .map(|((s, gap_us), i)| {
                at += Duration::from_micros(*gap_us);
                (encode(&schema, s.value(i)), at)
            })
            .collect();
        let interval = Duration::from_micros(interval_us);
        let out = run(&mut decimator(&schema, algorithm, Window::Time(interval)), &input);
        let windows = time_windows(&input, interval);
        prop_assert_eq!(out.len(), windows.len() * outputs_per_window(algorithm));
        check(&schema, algorithm, &windows, &out);
    }

    #[test]
    fn varints_round_trip(v in any::<i64>()) {
        let mut buf = Vec::new();
        write_long(v, &mut buf);
        let mut pos = 0;
        prop_assert_eq!(read_long(&buf, &mut pos), Some(v));
        prop_assert_eq!(pos, buf.len());
    }
}
