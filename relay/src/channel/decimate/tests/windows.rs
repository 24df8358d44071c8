//! When windows close: by count, by arrival time (on a datum and on the
//! timer), when cut short; and downsample's output.

use std::time::{Duration, SystemTime};

use super::{collect, config, decimator, run, t0, ALGORITHMS};
use crate::avro::testutil::{example_datum, example_schema};
use crate::avro::SchemaError;
use crate::channel::decimate::Decimator;
use crate::channel::out_batch::OutBatch;
use crate::config::{Algorithm, Window};

const MS: Duration = Duration::from_millis(1);

/// `n` example datums, 200 µs apart (5 kHz) from [`t0`].
fn stream(n: u64) -> Vec<(Vec<u8>, SystemTime)> {
    let schema = example_schema();
    (0..n)
        .map(|i| {
            (
                example_datum(&schema, i),
                t0() + Duration::from_micros(200 * i),
            )
        })
        .collect()
}

fn downsample(window: Window) -> Decimator {
    decimator(&example_schema(), Algorithm::Downsample, window)
}

#[test]
fn downsample_keeps_the_last_of_each_count_window() {
    let input = stream(20);
    let out = run(&mut downsample(Window::Count(5)), &input);
    let want: Vec<Vec<u8>> = [4, 9, 14, 19].iter().map(|&i| input[i].0.clone()).collect();
    assert_eq!(out, want);
}

#[test]
fn factor_one_keeps_everything_for_every_algorithm() {
    let input = stream(4);
    for algorithm in ALGORITHMS {
        let mut d = decimator(&example_schema(), algorithm, Window::Count(1));
        let out = run(&mut d, &input);
        let per = if algorithm == Algorithm::MinMax { 2 } else { 1 };
        let want: Vec<Vec<u8>> = input
            .iter()
            .flat_map(|(datum, _)| std::iter::repeat_n(datum.clone(), per))
            .collect();
        assert_eq!(out, want, "{algorithm:?}");
    }
}

#[test]
fn cut_short_window_is_emitted_once() {
    let input = stream(10);
    let mut d = downsample(Window::Count(4));
    let mut out = OutBatch::default();
    for (datum, at) in &input[..6] {
        d.push(datum, *at, &mut out);
    }
    assert_eq!(collect(&out), vec![input[3].0.clone()]);
    out.clear();
    d.flush(&mut out);
    assert_eq!(collect(&out), vec![input[5].0.clone()]);
    out.clear();
    d.flush(&mut out);
    assert!(out.is_empty());
    // The next window starts empty.
    for (datum, at) in &input[6..10] {
        d.push(datum, *at, &mut out);
    }
    assert_eq!(collect(&out), vec![input[9].0.clone()]);
}

#[test]
fn full_window_leaves_nothing_to_flush() {
    let mut d = downsample(Window::Count(3));
    let mut out = OutBatch::default();
    for (datum, at) in &stream(6) {
        d.push(datum, *at, &mut out);
    }
    out.clear();
    d.flush(&mut out);
    assert!(out.is_empty());
    assert_eq!(d.next_deadline(), None, "count windows need no timer");
}

#[test]
fn disabled_is_none() {
    let mut cfg = config(Algorithm::Average, Window::Count(5));
    cfg.enabled = false;
    assert!(Decimator::new(&cfg, &example_schema()).unwrap().is_none());
}

#[test]
fn every_algorithm_is_accepted() {
    for algorithm in ALGORITHMS {
        for window in [Window::Count(5), Window::Time(10 * MS)] {
            let cfg = config(algorithm, window);
            assert!(Decimator::new(&cfg, &example_schema()).unwrap().is_some());
        }
    }
}

#[test]
fn unknown_named_type_is_an_error() {
    // apache-avro refuses these while parsing, so build the reference by hand.
    let schema = apache_avro::Schema::Ref {
        name: apache_avro::schema::Name::new("nowhere").unwrap(),
    };
    let err = Decimator::new(&config(Algorithm::Average, Window::Count(2)), &schema).unwrap_err();
    assert_eq!(err, SchemaError::UnknownName("nowhere".into()));
    assert!(err.to_string().contains("`nowhere`"));
}

#[test]
fn time_windows_follow_the_arrival_grid() {
    // 5 kHz from 3 ms into a 10 ms cell: the first window holds 35 datums
    // (3.0..9.8 ms), the next ones 50 each.
    let input = stream(200);
    let mut d = downsample(Window::Time(10 * MS));
    let mut out = OutBatch::default();
    let mut closed_at = Vec::new();
    for (i, (datum, at)) in input.iter().enumerate() {
        let before = out.len();
        d.push(datum, *at, &mut out);
        if out.len() > before {
            closed_at.push(i);
        }
    }
    assert_eq!(closed_at, vec![35, 85, 135, 185]);
    let emitted: Vec<Vec<u8>> = [34, 84, 134, 184]
        .iter()
        .map(|&i| input[i].0.clone())
        .collect();
    assert_eq!(collect(&out), emitted);
}

#[test]
fn a_time_window_closes_by_timer_when_the_source_goes_quiet() {
    let input = stream(3);
    let mut d = downsample(Window::Time(10 * MS));
    let mut out = OutBatch::default();
    assert_eq!(d.next_deadline(), None, "no deadline while empty");
    for (datum, at) in &input {
        d.push(datum, *at, &mut out);
    }
    assert!(out.is_empty());
    let end = t0() + 7 * MS;
    assert_eq!(d.next_deadline(), Some(end));
    d.poll(end - Duration::from_nanos(1), &mut out);
    assert!(out.is_empty(), "not before the end");
    d.poll(end, &mut out);
    assert_eq!(collect(&out), vec![input[2].0.clone()]);
    assert_eq!(d.next_deadline(), None);
    // Polling again, or flushing, emits nothing more.
    d.poll(end + 100 * MS, &mut out);
    d.flush(&mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn empty_time_windows_emit_nothing() {
    let input = stream(2);
    let mut d = downsample(Window::Time(10 * MS));
    let mut out = OutBatch::default();
    d.push(&input[0].0, t0(), &mut out);
    // The next datum arrives 55 ms later: one output, for the first window.
    d.push(&input[1].0, t0() + 55 * MS, &mut out);
    assert_eq!(collect(&out), vec![input[0].0.clone()]);
    assert_eq!(d.next_deadline(), Some(t0() + 57 * MS));
}

#[test]
fn a_clock_stepping_back_closes_the_window() {
    let input = stream(2);
    let mut d = downsample(Window::Time(10 * MS));
    let mut out = OutBatch::default();
    d.push(&input[0].0, t0(), &mut out);
    d.push(&input[1].0, t0() - Duration::from_secs(3600), &mut out);
    assert_eq!(collect(&out), vec![input[0].0.clone()]);
    assert_eq!(
        d.next_deadline(),
        Some(t0() - Duration::from_secs(3600) + 7 * MS)
    );
}

#[test]
fn flush_emits_a_partial_time_window_for_every_algorithm() {
    let input = stream(3);
    for algorithm in ALGORITHMS {
        let mut d = decimator(&example_schema(), algorithm, Window::Time(10 * MS));
        let out = run(&mut d, &input);
        let want = if algorithm == Algorithm::MinMax { 2 } else { 1 };
        assert_eq!(out.len(), want, "{algorithm:?}");
        assert_eq!(d.next_deadline(), None);
    }
}

#[test]
fn before_the_epoch_a_window_starts_at_the_first_datum() {
    let input = stream(1);
    let mut d = downsample(Window::Time(10 * MS));
    let mut out = OutBatch::default();
    let then = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
    d.push(&input[0].0, then, &mut out);
    assert_eq!(d.next_deadline(), Some(then + 10 * MS));
}
